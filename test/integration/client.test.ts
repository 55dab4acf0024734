import { randomUUID } from 'node:crypto'
import type { AddressInfo, Socket } from 'node:net'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it, vi } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import {
  AuthError,
  type CursorStorage,
  memoryStorage,
  NotificationClient,
  ProtocolError,
  type ReadEvent,
  RequestError,
} from '../../src/index.js'
import { mintToken, SqliteStore } from '../../src/server/index.js'
import { ClientPool, holds, range } from '../helpers/client.js'
import { MarkerProxy } from '../helpers/marker-proxy.js'
import { authedClient, startServer, type TestServer } from '../helpers/server.js'

/**
 * NotificationClient against the real reference server, through the public
 * API only: restarts, token expiry and revocation, many tabs of one user,
 * offline queueing, history, topics and paged replay.
 */

let t: TestServer | undefined
const clients = new ClientPool()

afterEach(async () => {
  clients.closeAll()
  await t?.dispose()
  t = undefined
})

async function server(options?: Parameters<typeof startServer>[0]): Promise<TestServer> {
  t = await startServer(options)
  return t
}

/** A token provider for `userId` on the current server that counts its calls. */
function provider(s: TestServer, userId: string, ttlSeconds?: number): { token: () => Promise<string>; calls: () => number } {
  let calls = 0
  return {
    token: () => {
      calls++
      return s.token(userId, ttlSeconds)
    },
    calls: () => calls,
  }
}

async function publishMany(s: TestServer, userId: string, count: number): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < count; i++) ids.push((await s.server.sendToUser(userId, { title: `n${i}`, body: '' })).id)
  return ids
}

/** Counts WebSocket upgrade requests that reach the server's HTTP server. */
function countUpgrades(s: TestServer): () => number {
  let n = 0
  s.server.httpServer?.on('upgrade', () => n++)
  return () => n
}

/** Waits until the server has dropped every connection (a closed client's socket is gone). */
async function drained(s: TestServer): Promise<void> {
  await vi.waitFor(() => expect(s.server.stats().connections).toBe(0))
}

describe('NotificationClient: reconnects', () => {
  it('hands a stream published across a server restart to the app exactly once, in seq order', async () => {
    const s = await server()
    const { events } = await clients.online({ url: s.wsUrl, token: () => s.token('ann') })
    const total = 60
    const ids: string[] = []
    for (let i = 1; i <= total; i++) {
      if (i === total / 2) await s.restart() // publishing carries on on the new server object
      ids.push((await s.server.sendToUser('ann', { title: `n${i}`, body: '' })).id)
    }
    await vi.waitFor(() => expect(events.seqs()).toEqual(range(1, total)), { timeout: 10_000 })
    expect(events.notifications.map((n) => n.id)).toEqual(ids)
    expect(new Set(events.notifications.map((n) => n.id)).size).toBe(total)
    expect(events.statuses).toContainEqual(expect.objectContaining({ from: 'online', to: 'reconnecting', reason: 'close 1001' }))
    expect(events.count('online')).toBe(2)
    expect(events.errors).toEqual([])
  })

  it('gets a fresh token when the server closes 4002 at expiry and keeps receiving', async () => {
    const s = await server()
    const tokens = provider(s, 'bo', 2)
    const { client, events } = await clients.online({ url: s.wsUrl, token: tokens.token })
    await s.server.sendToUser('bo', { title: 'before expiry', body: '' })
    await vi.waitFor(() => expect(events.seqs()).toEqual([1]))
    // Published the moment the client learns of the expiry, before it is back online.
    let during: Promise<unknown> | undefined
    client.on('status', (e) => {
      if (e.reason === 'token expired') during ??= s.server.sendToUser('bo', { title: 'during the refresh', body: '' })
    })
    await vi.waitFor(() => expect(during).toBeDefined(), { timeout: 5000 })
    await during
    await vi.waitFor(() => expect(client.state).toBe('online'))
    await s.server.sendToUser('bo', { title: 'after expiry', body: '' })
    await vi.waitFor(() =>
      expect(events.notifications.map((n) => n.title)).toEqual(['before expiry', 'during the refresh', 'after expiry']),
    )
    expect(events.seqs()).toEqual([1, 2, 3])
    expect(tokens.calls()).toBeGreaterThanOrEqual(2)
    const at = events.statuses.findIndex((e) => e.reason === 'token expired')
    expect(events.statuses.slice(at, at + 3).map((e) => `${e.from}>${e.to}`)).toEqual([
      'online>connecting',
      'connecting>authenticating',
      'authenticating>online',
    ])
    expect(events.errors.filter((e) => e.name === 'AuthError')).toEqual([])
  })
})

describe('NotificationClient: a revoked token', () => {
  /** A provider whose tokens are signed with a secret the server does not know. */
  function revoked(): { token: () => Promise<string>; calls: () => number } {
    let calls = 0
    return {
      token: () => {
        calls++
        return mintToken('a-secret-the-server-never-had-0123', 'cy')
      },
      calls: () => calls,
    }
  }

  it('stops for good: closed, ready() rejects with an AuthError, at most one fresh-token retry', async () => {
    const s = await server()
    const upgrades = countUpgrades(s)
    const tokens = revoked()
    const { client } = clients.make({ url: s.wsUrl, token: tokens.token })
    client.connect()
    await vi.waitFor(() => expect(client.state).toBe('closed'))
    const error = await client.ready().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(AuthError)
    expect(error).toMatchObject({ name: 'AuthError', code: 4001 })
    expect(tokens.calls()).toBeGreaterThanOrEqual(1)
    expect(tokens.calls()).toBeLessThanOrEqual(2)
    // No retry loop: over a window longer than the largest backoff (300 ms), nothing more happens.
    const calls = tokens.calls()
    const seen = upgrades()
    await holds(() => {
      expect(client.state).toBe('closed')
      expect(tokens.calls()).toBe(calls)
      expect(upgrades()).toBe(seen)
    }, 600)
    expect(s.server.stats().connections).toBe(0)
  })

  // Regression: Link.#fail used to close before reporting; the close cleared the app's listeners and
  // rejected a pending ready() with RequestError('closed'), so the AuthError reached nobody.
  it('reports the AuthError on the error event and rejects a pending ready() with it', async () => {
    const s = await server()
    const tokens = revoked()
    const { client, events } = clients.make({ url: s.wsUrl, token: tokens.token })
    const ready = client.ready().then(
      () => undefined,
      (e: unknown) => e,
    )
    client.connect()
    const error = await ready
    expect(client.state).toBe('closed')
    expect(error).toBeInstanceOf(AuthError)
    expect(events.errors.map((e) => e.name)).toEqual(['AuthError'])
    expect(events.errors[0]).toBe(error)
  })
})

describe('NotificationClient: tabs and devices', () => {
  it('50 clients of one user each get a notification once and agree on read state', async () => {
    const s = await server()
    const tabs = await Promise.all(range(1, 50).map(() => clients.online({ url: s.wsUrl, token: () => s.token('dee') })))
    const { id } = await s.server.sendToUser('dee', { title: 'to every tab', body: '' })
    await vi.waitFor(() => {
      for (const tab of tabs) expect(tab.events.notifications.map((n) => n.id)).toEqual([id])
    })
    for (const tab of tabs) expect(tab.client.unreadCount).toBe(1)

    const marked = await tabs[7]!.client.markRead(id)
    const change = { ids: [id], all: false, seq: 1, unreadCount: 0 }
    expect(marked).toMatchObject(change)
    await vi.waitFor(() => {
      for (const tab of tabs) expect(tab.events.reads).toMatchObject([change])
    })
    for (const tab of tabs) expect(tab.client.unreadCount).toBe(0)

    await s.server.sendToUser('dee', { title: 'another', body: '' })
    await vi.waitFor(() => {
      for (const tab of tabs) expect(tab.client.unreadCount).toBe(1)
    })
    await tabs[31]!.client.markAllRead()
    await vi.waitFor(() => {
      for (const tab of tabs) expect(tab.events.reads.at(-1)).toMatchObject({ ids: [], all: true, seq: 2, unreadCount: 0 })
    })
    for (const tab of tabs) {
      expect(tab.client.unreadCount).toBe(0)
      expect(tab.events.reads).toHaveLength(2)
      expect(tab.events.seqs()).toEqual([1, 2])
    }
  })
})

describe('NotificationClient: offline queueing and resume', () => {
  it('a new device gets what was queued after the acked cursor; a persisted cursor resumes without duplicates', async () => {
    const s = await server()
    const shared = memoryStorage()
    // First session: two notifications, acked when the client closes.
    const first = await clients.online({ url: s.wsUrl, token: () => s.token('eve'), storage: shared })
    await publishMany(s, 'eve', 2)
    await vi.waitFor(() => expect(first.events.seqs()).toEqual([1, 2]))
    first.client.close()
    await drained(s)

    // Offline: five more are queued.
    await publishMany(s, 'eve', 5)

    // A new device (no cursor) gets what came after the acked cursor (2), once, then live ones.
    const fresh = await clients.online({ url: s.wsUrl, token: () => s.token('eve'), storage: memoryStorage() })
    await vi.waitFor(() => expect(fresh.events.seqs()).toEqual(range(3, 7)))
    await publishMany(s, 'eve', 1)
    await vi.waitFor(() => expect(fresh.events.seqs()).toEqual(range(3, 8)))
    fresh.client.close() // acks 8 on the way out
    await drained(s)

    // The first device again, on the storage it persisted its cursor (2) in: it resumes from there,
    // not from the server's acked cursor (now 8), and repeats nothing it already had.
    const again = await clients.online({ url: s.wsUrl, token: () => s.token('eve'), storage: shared })
    await publishMany(s, 'eve', 1)
    await vi.waitFor(() => expect(again.events.seqs()).toEqual(range(3, 9)))
    const both = [...first.events.notifications, ...again.events.notifications]
    expect(both.map((n) => n.seq)).toEqual(range(1, 9))
    expect(new Set(both.map((n) => n.id)).size).toBe(9)
  })

  // Regression: since -1 got an error frame in answer to the auth frame, which the client did not
  // read while authenticating: it went round auth timeouts for good, reporting nothing.
  it('takes a stored cursor that is not a seq (corrupted storage: -1) for none, and gets online', async () => {
    const s = await server()
    await publishMany(s, 'ann', 2)
    const storage = memoryStorage()
    storage.setItem('belfry:cursor:ann', '-1')
    const { client, events } = clients.make({ url: s.wsUrl, token: () => s.token('ann'), storage, connectTimeout: 1000 })
    client.connect()
    await vi.waitFor(() => expect(events.seqs()).toEqual([1, 2]), { timeout: 3000 })
    expect(client.state).toBe('online')
    expect(storage.getItem('belfry:cursor:ann')).toBe('2')
  })

  it('sends no ack frame while connected: the heartbeat acks what it received, and a new device starts after it', async () => {
    const s = await server({ limits: { heartbeatMs: 100 } })
    const sent: { type: string }[] = []
    /** `ws`, recording each frame the client sends. */
    class Recording extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols)
        const send = this.send.bind(this)
        this.send = ((data: string) => {
          sent.push(JSON.parse(data))
          send(data)
        }) as WebSocket['send']
      }
    }
    // A storage that outlives the page, as a browser's localStorage does (Node's default is memory: `volatile`).
    const storage = { ...memoryStorage(), volatile: false }
    const first = await clients.online({ url: s.wsUrl, token: () => s.token('gil'), WebSocket: Recording, storage })
    await publishMany(s, 'gil', 3)
    await vi.waitFor(() => expect(first.events.seqs()).toEqual([1, 2, 3]))
    const db = new Database(s.database, { readonly: true })
    const acked = () => (db.prepare('SELECT acked_seq AS seq FROM users WHERE id = ?').get('gil') as { seq: number }).seq
    await vi.waitFor(() => expect(acked()).toBe(3), { timeout: 5000 })
    db.close()
    await new Promise((resolve) => setTimeout(resolve, 1200)) // past the default ackDelay (1 s): nothing timed either
    expect(sent.filter((f) => f.type === 'ack')).toEqual([])

    const fresh = await clients.online({ url: s.wsUrl, token: () => s.token('gil'), storage: memoryStorage() })
    await publishMany(s, 'gil', 1)
    await vi.waitFor(() => expect(fresh.events.seqs()).toEqual([4]))
    await vi.waitFor(() => expect(first.events.seqs()).toEqual([1, 2, 3, 4]))
    first.client.close()
    expect(sent.filter((f) => f.type === 'ack')).toEqual([{ type: 'ack', seq: 4 }])
  })

  it('pages through a long replay (replayBatch 10) from a persisted cursor of 0, in order, then goes live', async () => {
    const s = await server({ limits: { replayBatch: 10 } })
    const ids = await publishMany(s, 'fay', 35)
    // A storage that has a cursor of 0 for any key (the client's key format is its own business).
    const saved = new Map<string, string>()
    const storage: CursorStorage = { getItem: (k) => saved.get(k) ?? '0', setItem: (k, v) => void saved.set(k, v) }
    const { events } = await clients.online({ url: s.wsUrl, token: () => s.token('fay'), storage })
    await vi.waitFor(() => expect(events.seqs()).toEqual(range(1, 35)))
    expect(events.notifications.map((n) => n.id)).toEqual(ids)
    await publishMany(s, 'fay', 2)
    await vi.waitFor(() => expect(events.seqs()).toEqual(range(1, 37)))
    expect(new Set(events.notifications.map((n) => n.id)).size).toBe(37)
    expect([...saved.values()]).toEqual(['37'])
  })
})

describe('NotificationClient: requests', () => {
  it('pages history newest first until there is no next: all 45 once', async () => {
    const s = await server()
    const ids = await publishMany(s, 'gus', 45)
    const { client } = await clients.online({ url: s.wsUrl, token: () => s.token('gus') })
    const seen: { id: string; seq: number }[] = []
    const sizes: number[] = []
    let before: number | undefined
    for (let pages = 0; pages < 10; pages++) {
      const page = await client.history(before === undefined ? { limit: 20 } : { limit: 20, before })
      seen.push(...page.items)
      sizes.push(page.items.length)
      if (page.next === undefined) break
      before = page.next
    }
    expect(sizes).toEqual([20, 20, 5])
    expect(seen.map((n) => n.seq)).toEqual(range(1, 45).reverse())
    expect(seen.map((n) => n.id)).toEqual([...ids].reverse())
  })

  it('keeps a topic subscription across a restart onto an empty database: the client subscribes again', async () => {
    const s = await server()
    const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token('hal') })
    client.subscribe('deploys')
    await client.history({ limit: 1 }) // frames are handled in order: the subscribe is done
    // The new server has no stored subscription: only the client's own subscribe on reconnect brings it back.
    const before = s.database
    await s.restart({ freshDatabase: true })
    expect(s.database).not.toBe(before)
    await vi.waitFor(() => expect(events.count('online')).toBe(2))
    await client.history({ limit: 1 })
    const published = await s.server.publish('deploys', { title: 'v2 is out', body: '' })
    expect(published.recipients).toBe(1)
    await vi.waitFor(() =>
      expect(events.notifications).toEqual([expect.objectContaining({ title: 'v2 is out', topic: 'deploys', seq: 1 })]),
    )
  })

  it('re-subscribes after a reconnect even when the server forgot the subscription; not an unsubscribed one', async () => {
    const s = await server()
    const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token('ida') })
    client.subscribe('deploys')
    const leave = client.subscribe('alerts')
    leave()
    await client.history({ limit: 1 })
    expect((await s.server.publish('deploys', { title: 'before', body: '' })).recipients).toBe(1)
    // The server loses its subscriptions (as a fresh store would), then restarts.
    const store = new SqliteStore(s.database)
    await store.unsubscribe('ida', ['deploys'])
    await store.close()
    await s.restart()
    await vi.waitFor(() => expect(events.count('online')).toBe(2))
    await client.history({ limit: 1 })
    expect((await s.server.publish('deploys', { title: 'after', body: '' })).recipients).toBe(1)
    expect((await s.server.publish('alerts', { title: 'not for ida', body: '' })).recipients).toBe(0)
    await vi.waitFor(() => expect(events.notifications.map((n) => n.title)).toEqual(['before', 'after']))
  })

  it("a token of another user leaves the last user's topics behind: they are not subscribed for the new one", async () => {
    const s = await server()
    let user = 'ann'
    const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token(user) })
    client.subscribe('team:ann')
    const leave = client.subscribe('all-hands')
    await client.history({ limit: 1 }) // frames are handled in order: the subscribes are done
    // Bob follows all-hands on a device of his own.
    const bob = await clients.online({ url: s.wsUrl, token: () => s.token('bob') })
    bob.client.subscribe('all-hands')
    await bob.client.history({ limit: 1 })
    expect((await s.server.publish('all-hands', { title: 'for both', body: '' })).recipients).toBe(2)
    // Ann signs out and Bob in, on the same client; a deploy makes it reconnect with Bob's token.
    user = 'bob'
    await s.restart()
    await vi.waitFor(() => expect(events.count('online')).toBe(2))
    await client.history({ limit: 1 })
    expect((await s.server.publish('team:ann', { title: 'ann only', body: '' })).recipients).toBe(1)
    // Ann's stop, called late, does not end Bob's own subscription.
    leave()
    await client.history({ limit: 1 })
    expect((await s.server.publish('all-hands', { title: 'for both still', body: '' })).recipients).toBe(2)
  })

  it("a request made for the last user is rejected when the token provider switches users, not sent on the new user's connection", async () => {
    const s = await server()
    await s.server.sendToUser('bo', { title: 'for bo 1', body: '' })
    await s.server.sendToUser('bo', { title: 'for bo 2', body: '' })
    let user = 'ann'
    const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token(user), connectTimeout: 500 })
    // The connection drops (a deploy, the network); ann's page asks to mark all read meanwhile.
    await s.stop()
    await vi.waitFor(() => expect(client.state).not.toBe('online'))
    const marked = client.markAllRead().then(
      (e) => ({ resolved: e }),
      (e: unknown) => ({ rejected: e }),
    )
    // ann signs out and bo signs in in the same page: the provider now yields bo's token.
    user = 'bo'
    await s.restart()
    await vi.waitFor(() => expect(client.state).toBe('online'), { timeout: 5000 })
    const outcome = await Promise.race([marked, new Promise((r) => setTimeout(() => r('pending'), 1000))])
    // bo's inbox as the server has it, through a socket of bo's own: nothing of it was marked read.
    const bo = await authedClient(s, 'bo')
    const success = bo.of('auth_success')[0]
    bo.close()
    expect({ boUnread: success?.unreadCount, readEvents: events.reads.length }).toEqual({ boUnread: 2, readEvents: 0 })
    expect(outcome).toEqual({ rejected: expect.any(RequestError) })
    expect((outcome as { rejected: RequestError }).rejected.message).toBe('the user changed')
  })

  it('a markRead whose reply is lost with the connection resolves, after it is sent again, naming the id', async () => {
    const s = await server()
    // Armed, the proxy cuts the connection that sends next at the first frame the server sends back: the reply.
    const proxy = new MarkerProxy(s.port, (_, { client, upstream }) => {
      client.destroy()
      upstream.destroy()
    })
    const port = await proxy.listen()
    try {
      const { client, events } = await clients.online({ url: `ws://127.0.0.1:${port}/ws`, token: () => s.token('ann') })
      const { id } = await s.server.sendToUser('ann', { title: 'hello', body: '' })
      await vi.waitFor(() => expect(events.notifications.map((n) => n.id)).toEqual([id]))
      proxy.arm('') // the next thing the client sends: the mark_read frame
      const result = await client.markRead(id)
      expect(proxy.marked).toBe(1)
      expect(events.count('reconnecting')).toBe(1)
      expect(result).toMatchObject({ ids: [id], unreadCount: 0 })
      expect(events.reads.flatMap((r) => r.ids)).toEqual([id])
    } finally {
      await proxy.close()
    }
  })
  // A markAllRead that waits while the client is away goes out after the next auth, whose replay brings
  // what was published meanwhile: it marks what the user could have seen when calling it, no more.
  it('a markAllRead made while away leaves unread the notifications published after the call, which the user never saw', async () => {
    const s = await server()
    let away = false
    const { client, events } = await clients.online({
      url: s.wsUrl,
      // While away the provider fails: the client retries, and its requests wait.
      token: () => (away ? Promise.reject(new Error('no network')) : s.token('ann')),
    })
    await publishMany(s, 'ann', 2)
    await vi.waitFor(() => expect(events.seqs()).toEqual([1, 2]))
    expect(client.unreadCount).toBe(2)

    away = true
    await s.restart() // the socket drops; the reconnects fail at the token provider
    await vi.waitFor(() => expect(client.state).toBe('reconnecting'))
    // The user reads the two notifications on screen and clicks "mark all read".
    const marked = client.markAllRead()
    marked.catch(() => {})
    // Meanwhile two more are published, which this user has not seen.
    await publishMany(s, 'ann', 2)

    away = false
    const event = await marked
    await vi.waitFor(() => expect(events.seqs()).toEqual([1, 2, 3, 4]))
    // What the user saw is read; what came while it was away is still unread.
    const page = await client.history({ limit: 10 })
    expect(page.items.map((n) => [n.seq, n.read])).toEqual([
      [4, false],
      [3, false],
      [2, true],
      [1, true],
    ])
    expect(event).toEqual({ ids: [], all: true, seq: 2, unreadCount: 2 })
    // The count's frame at the latest follows the reply: the event after it covers 3 and 4.
    await vi.waitFor(() => expect(events.reads).toEqual([event, { ids: [], all: false, seq: 4, unreadCount: 2 }]))
    expect(client.unreadCount).toBe(2)
  })

  // The bound is the highest seq the client knew of when called; once the client has taken a new user's token
  // (requests made for the last user were rejected then: "the user changed") it knows nothing of that user's
  // inbox yet, as before its first auth: the call marks all there is, and carries no seq of another inbox.
  it("a markAllRead made for the new user after the token provider switched users is not bounded by the last user's seq", async () => {
    const s = await server()
    // bo has five unread; ann, the user signed in first, one.
    for (let i = 1; i <= 5; i++) await s.server.sendToUser('bo', { title: `for bo ${i}`, body: '' })
    await s.server.sendToUser('ann', { title: 'for ann', body: '' })
    let user = 'ann'
    const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token(user) })
    await vi.waitFor(() => expect(events.seqs()).toEqual([1]))

    // ann signs out and bo signs in in the same page; the connection drops (a deploy) and comes back as bo's.
    user = 'bo'
    let marked: Promise<ReadEvent> | undefined
    const off = client.on('status', (e) => {
      // bo's token has been taken (the auth frame is on its way): bo's page marks bo's inbox read.
      if (e.to === 'authenticating' && !marked) {
        marked = client.markAllRead()
        marked.catch(() => {})
      }
    })
    await s.restart()
    await vi.waitFor(() => expect(client.state === 'online' && marked !== undefined).toBe(true), { timeout: 5000 })
    off()
    const event = await marked!

    // bo's inbox as the server has it, through a socket of bo's own: all five read, not only up to ann's seq 1.
    const bo = await authedClient(s, 'bo')
    const success = bo.of('auth_success')[0]
    bo.close()
    expect({ event, boUnread: success?.unreadCount }).toEqual({
      event: { ids: [], all: true, seq: 5, unreadCount: 0 },
      boUnread: 0,
    })
  })

  it("a markRead whose frame would pass the server's 64 KiB (2,000 ids) rejects at once with a ProtocolError (bad_frame), without cutting the connection", async () => {
    // Sent, ws would close the socket (1009) and the client would send it again after every auth until it
    // timed out (a TimeoutError): every other request, and every belfry/shared tab, losing the connection each time.
    const s = await server()
    const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token('ann'), requestTimeout: 4000 })
    const ids = Array.from({ length: 2000 }, () => randomUUID())
    const error = await client.markRead(ids).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(ProtocolError)
    expect(error).toMatchObject({ code: 'bad_frame' })
    expect(events.count('reconnecting'), 'the connection was cut for it').toBe(0)
    expect(await client.markRead(ids.slice(0, 500))).toMatchObject({ ids: ids.slice(0, 500) }) // 500, the protocol's most, still go
  })

  it('with the default maxQueue, as many requests as it holds made while offline are all answered once the server is back, without a 4029; one more rejects at once', async () => {
    // The queue is flushed in the tick auth_success arrives: maxQueue (50) stays under the server's default
    // frame burst (rateBurst, 60) and the requests it lets wait per connection (64), with room for the resume
    // and topic frames. At 100, 70 requests made while offline got the client cut off with 4029 five times.
    const s = await server()
    const { id } = await s.server.sendToUser('ann', { title: 'hello', body: '' })
    const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token('ann'), requestTimeout: 8000 })
    await s.stop() // the connection is down (a train in a tunnel)
    await vi.waitFor(() => expect(client.state).not.toBe('online'))

    // Over the outage the user reads on: one markRead per item opened, a history page now and then.
    const requests: Promise<unknown>[] = []
    for (let i = 0; i < 50; i++) requests.push(i % 10 === 0 ? client.history({ limit: 5 }) : client.markRead(id))
    const outcomes = Promise.allSettled(requests)
    const overflow = await client.markRead(id).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(overflow).toBeInstanceOf(RequestError)
    expect((overflow as Error).message).toBe('queue full (options.maxQueue = 50)')

    await s.restart()
    const failed = (await outcomes).filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))
    expect({ failed, closes4029: events.statuses.filter((e) => e.reason === 'close 4029').length }).toEqual({ failed: [], closes4029: 0 })
  }, 20_000)
})

describe('NotificationClient: a server that stays down for a while', () => {
  // An outage longer than a couple of retries (a deploy, a crash loop) must not leave clients dead until
  // the page is reloaded: every refused attempt has to build a new socket, and the client comes back once
  // the server is up. (How reconnecting-websocket's connect lock, upstream #165, can strand a client is on
  // the 'refused connection' test in client-defects.test.ts.)
  it('keeps trying while the server is down and comes back once it is up', async () => {
    const s = await server()
    const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token('kim'), connectTimeout: 500 })
    await s.stop()
    // Several refused attempts (each one ends 'close 1006'); with backoff ≤ 300 ms that takes well under 2 s.
    await vi.waitFor(() => expect(events.statuses.filter((e) => e.reason === 'close 1006').length).toBeGreaterThanOrEqual(3), {
      timeout: 2000,
    })
    await s.restart()
    await vi.waitFor(() => expect(client.state).toBe('online'), { timeout: 3000 })
    await s.server.sendToUser('kim', { title: 'back', body: '' })
    await vi.waitFor(() => expect(events.notifications.map((n) => n.title)).toEqual(['back']))
  })
})

describe('NotificationClient: read state changed while it was away', () => {
  it('a client whose cursor is still 0 (it shows history pages; nothing came to it live) learns, back online, that all was read meanwhile', async () => {
    const s = await server()
    await s.server.sendToUser('ann', { title: 'n1', body: '' })
    await s.server.sendToUser('ann', { title: 'n2', body: '' })
    // The phone has both (its cursor acks them): a new page starts after the acked cursor and is handed nothing.
    const phone = await authedClient(s, 'ann', { since: 2 })

    // The laptop's page: a fresh profile (no cursor stored for ann), its sockets tracked, its token provider gated.
    const sockets: WebSocket[] = []
    class Tracked extends WebSocket {
      constructor(...args: ConstructorParameters<typeof WebSocket>) {
        super(...args)
        sockets.push(this)
      }
    }
    let gate: Promise<void> = Promise.resolve()
    let open = () => {}
    const { client, events } = await clients.online({
      url: s.wsUrl,
      WebSocket: Tracked as unknown as typeof WebSocket,
      storage: memoryStorage(),
      token: async () => {
        await gate
        return s.token('ann')
      },
    })
    expect(events.notifications).toEqual([]) // nothing handed over: the cursor stays 0
    // The app shows the inbox, as README's paging idiom / belfry/react's loadMore() do: both unread.
    const page = await client.history()
    expect(page.items.map((n) => [n.seq, n.read])).toEqual([
      [2, false],
      [1, false],
    ])

    // The laptop loses its connection; while it is away the user reads everything on the phone.
    gate = new Promise((resolve) => {
      open = resolve
    })
    sockets.at(-1)!.terminate()
    await expect.poll(() => client.state).not.toBe('online')
    const requestId = 'r-all'
    phone.send({ type: 'mark_read', all: true, requestId })
    expect(await phone.next((f) => f.requestId === requestId)).toMatchObject({ type: 'read', all: true, seq: 2, unreadCount: 0 })

    // Back online: the list must be told that what it shows (seq 1 and 2) is read.
    open()
    await expect.poll(() => client.state).toBe('online')
    expect(client.unreadCount).toBe(0)
    await expect
      .poll(
        () => events.reads.some((r) => (r.all && r.seq >= 2) || (r.ids.includes(page.items[0]!.id) && r.ids.includes(page.items[1]!.id))),
        {
          timeout: 2000,
        },
      )
      .toBe(true)
    phone.close()
  })
})

describe('NotificationClient: a markRead reply and the frame right behind it (Node, ws: one TCP read)', () => {
  // README "Events": the `read` event and unreadCount follow the server's frames in the order they come. ws
  // emits the messages of one TCP read synchronously, one after the other: a reply applied only once its
  // request's promise settled came after the frame behind it, and overwrote its newer count.
  const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  const TOKEN = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: 'ann' })}.sig`
  const note = (seq: number) => ({
    type: 'notification',
    id: `n${seq}`,
    seq,
    title: `t${seq}`,
    body: '',
    priority: 'medium',
    timestamp: '2024-01-01T00:00:00.000Z',
    read: false,
  })
  let wss: WebSocketServer | undefined
  let client: NotificationClient | undefined
  afterEach(async () => {
    client?.close()
    await new Promise((r) => (wss ? wss.close(r) : r(undefined)))
    wss = client = undefined
  })

  /** A belfry-protocol server (seq 5, 3 unread) that answers a mark_read with its reply and, right behind it in one write, `after`. */
  async function serve(after: object): Promise<string> {
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
    await new Promise((r) => wss!.once('listening', r))
    wss.on('connection', (ws) => {
      ws.on('message', (data) => {
        const f = JSON.parse(String(data))
        if (f.type === 'auth') {
          ws.send(
            JSON.stringify({ type: 'auth_success', message: 'ok', userId: 'ann', seq: 5, unreadCount: 3, oldestSeq: 0, pingAcks: true }),
          )
          ws.send(JSON.stringify({ type: 'replayed', more: false, seq: 5 }))
        }
        if (f.type === 'mark_read') {
          const reply = JSON.stringify({ type: 'read', ids: f.ids ?? [], all: !!f.all, seq: 5, unreadCount: 2, requestId: f.requestId })
          // The reply, then the next frame: both reach the client in one TCP read, as frames written together do.
          const socket = (ws as unknown as { _socket: Socket })._socket
          socket.cork()
          ws.send(reply)
          ws.send(JSON.stringify(after))
          process.nextTick(() => socket.uncork())
        }
      })
    })
    return `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/ws`
  }

  it('a live notification right behind a markRead reply is still counted as unread', async () => {
    client = new NotificationClient({ url: await serve(note(6)), token: TOKEN, WebSocket, storage: false })
    const counts: number[] = []
    const seqs: number[] = []
    client.on('unread', ({ count }) => counts.push(count))
    client.on('notification', (n) => seqs.push(n.seq))
    await client.ready({ timeout: 5000 })
    expect(client.unreadCount).toBe(3)
    const event = await client.markRead('n1') // 3 → 2 on the server, then n6 (unread) comes: 3
    expect(event).toEqual({ ids: ['n1'], all: false, seq: 5, unreadCount: 2 })
    await vi.waitFor(() => expect(seqs).toEqual([6]))
    await new Promise((r) => setTimeout(r, 50))
    expect(client.unreadCount).toBe(3)
    expect(counts.at(-1)).toBe(3)
  })

  it("another device's markAllRead right behind this client's markRead reply leaves the count at 0, read events in the server's order", async () => {
    client = new NotificationClient({
      url: await serve({ type: 'read', ids: [], all: true, seq: 5, unreadCount: 0 }),
      token: TOKEN,
      WebSocket,
      storage: false,
    })
    const reads: { all: boolean; unreadCount: number }[] = []
    client.on('read', (e) => reads.push(e))
    await client.ready({ timeout: 5000 })
    const event = await client.markRead('n1') // 3 → 2, then all read elsewhere: 0
    expect(event).toBe(reads[0]) // the request resolves with the event the client told
    await vi.waitFor(() => expect(reads).toHaveLength(2))
    expect(reads.map((e) => e.unreadCount)).toEqual([2, 0])
    expect(client.unreadCount).toBe(0)
  })
})
