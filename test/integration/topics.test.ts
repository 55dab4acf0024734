import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import WebSocket from 'ws'
import { memoryStorage, NotificationClient } from '../../src/index.js'
import { SqliteStore } from '../../src/server/index.js'
import { sharedConnection } from '../../src/shared/index.js'
import { ClientPool, FAST_BACKOFF, holds, type Recorder, record } from '../helpers/client.js'
import { FakeLocks } from '../helpers/locks.js'
import { httpPublish, type TestServer, useServer } from '../helpers/server.js'

const start = useServer()
const clients = new ClientPool()
afterEach(() => clients.closeAll())

/** The user's stored subscriptions, through dev mode's route (the demo's Topics card). */
async function storedTopics(url: string, user: string): Promise<string[]> {
  const res = await fetch(`${url}/api/dev/topics?user=${user}`)
  return ((await res.json()) as { topics: string[] }).topics.sort()
}

describe('NotificationClient: topics the protocol would refuse in a frame with others', () => {
  it('a topic too long for the wire does not cost the other topics of its batch their subscription', async () => {
    const t = await start()
    const { client, events } = await clients.online({ url: t.wsUrl, token: () => t.token('ann') })
    client.subscribe('deploys')
    client.subscribe('x'.repeat(300)) // past the protocol's 256 characters: dropped and reported as the server reports one
    await new Promise((r) => setTimeout(r, 200))
    const res = await httpPublish(t.url, { topic: 'deploys', title: 'shipped', body: '' })
    expect(res.status).toBe(201)
    await new Promise((r) => setTimeout(r, 300))
    // 'deploys' is subscribed, and the error names the refused topic with the server's code.
    expect(events.notifications.map((n) => n.title)).toEqual(['shipped'])
    expect(events.errors.map((e) => e.code)).toEqual(['topic_too_long'])
  })

  it('an app following more than 500 topics (the server allows 1,000) gets them: the client sends them in frames the protocol takes', async () => {
    const t = await start({ limits: { maxSubscriptionsPerUser: 1000 } })
    const { client, events } = await clients.online({ url: t.wsUrl, token: () => t.token('ann') })
    for (let i = 0; i < 501; i++) client.subscribe(`topic-${i}`)
    await new Promise((r) => setTimeout(r, 300))
    expect((await httpPublish(t.url, { topic: 'topic-0', title: 'first', body: '' })).status).toBe(201)
    await new Promise((r) => setTimeout(r, 300))
    expect(events.notifications.map((n) => n.title)).toEqual(['first'])
    expect(events.errors).toEqual([])
  })

  // A topic cut in the middle of an emoji (`name.slice(0, n)`) ends in a lone surrogate; one built from
  // user input may hold U+0000. No store keeps either: the server refuses such a topic on its own (bad_topic).
  for (const [what, bad] of [
    ['a lone surrogate', 'team-🚀'.slice(0, 6)],
    ['U+0000', 'team\u0000a'],
  ] as const) {
    it(`a topic with ${what} does not cost the other topics of its batch their subscription, and is reported as bad_topic`, async () => {
      const t = await start({ dev: true })
      const { client, events } = await clients.online({ url: t.wsUrl, token: () => t.token('ann') })
      client.subscribe('deploys')
      client.subscribe('alerts')
      client.subscribe(bad)
      await expect.poll(() => events.errors.length, { timeout: 3000 }).toBeGreaterThan(0)
      // What the error said: the frame as a whole was refused, the topics in it with it.
      const said = events.errors.map((e) => `${e.code}: ${e.message}`)
      expect(await storedTopics(t.url, 'ann'), `errors: ${JSON.stringify(said)}`).toEqual(['alerts', 'deploys'])
      expect(events.errors.map((e) => e.code)).toEqual(['bad_topic'])
    })
  }

  it('a topic the server refused as bad_topic is dropped: the topics the client restores after a reconnect are subscribed', async () => {
    const t = await start({ dev: true })
    const { client, events } = await clients.online({ url: t.wsUrl, token: () => t.token('ann') })
    client.subscribe('team\u0000a')
    await expect.poll(() => events.errors.length, { timeout: 3000 }).toBeGreaterThan(0)
    client.subscribe('deploys') // a later task: its own frame, subscribed
    await expect.poll(() => storedTopics(t.url, 'ann'), { timeout: 3000 }).toEqual(['deploys'])
    // A reconnect to a store that lost the subscription (a new database): the restore batch holds both topics.
    await fetch(`${t.url}/api/dev/drop?user=ann`, { method: 'POST' })
    await t.restart({ freshDatabase: true })
    await expect.poll(() => events.statuses.filter((s) => s.to === 'online').length, { timeout: 5000 }).toBeGreaterThan(1)
    await expect.poll(() => storedTopics(t.url, 'ann'), { timeout: 3000 }).toEqual(['deploys'])
  })
})

/** Subscribes `topics` in one task, then waits until the store holds them all or the client was cut off. */
async function subscribeAll(t: TestServer, client: NotificationClient, events: Recorder, topics: string[]): Promise<void> {
  for (const topic of topics) client.subscribe(topic)
  await expect
    .poll(async () => (await storedTopics(t.url, 'ann')).length === topics.length || events.count('reconnecting') > 0, { timeout: 5000 })
    .toBe(true)
  // The socket was not closed under the client (ws refuses a frame over maxFrameBytes with 1009) ...
  expect(events.statuses.filter((s) => s.to === 'reconnecting').map((s) => s.reason)).toEqual([])
  // ... and every topic is the user's.
  expect((await storedTopics(t.url, 'ann')).length).toBe(topics.length)
}

// Topics that are each within every documented limit can together be larger than the server's maxFrameBytes
// (64 KiB), which ws refuses by closing the socket with 1009; the restore after the reconnect would send the
// same frame again, for ever. The client counts each topic at its worst (length × 6 + 3 bytes) and keeps a frame under 64,000: 41 of the longest fit.
describe('NotificationClient: a batch of valid topics larger than the server takes in one frame', () => {
  it('at the server defaults, 200 topics (maxSubscriptionsPerUser) of 128 CJK characters (maxTopicLength) are all subscribed, the socket kept', async () => {
    const t = await start({ dev: true })
    const { client, events } = await clients.online({ url: t.wsUrl, token: () => t.token('ann') })
    // 128 UTF-16 code units each (the length the server checks), 3 UTF-8 bytes per character: 200 × ~390 B ≈ 77 KB.
    const topics = Array.from({ length: 200 }, (_, i) => `${String(i).padStart(3, '0')}${'通知'.repeat(63)}`.slice(0, 128))
    await subscribeAll(t, client, events, topics)
  })

  it('with maxTopicLength 256 (the documented maximum), 300 ASCII topics of 256 characters are all subscribed, the socket kept', async () => {
    const t = await start({ dev: true, limits: { maxTopicLength: 256, maxSubscriptionsPerUser: 500 } })
    const { client, events } = await clients.online({ url: t.wsUrl, token: () => t.token('ann') })
    const topics = Array.from({ length: 300 }, (_, i) => `${String(i).padStart(3, '0')}-${'t'.repeat(252)}`)
    await subscribeAll(t, client, events, topics)
  })

  it('its frames fit at the worst case: 43 topics of 256 characters that JSON escapes to six bytes each (U+0001), 66 KB together', async () => {
    const t = await start({ dev: true, limits: { maxTopicLength: 256 } })
    const { client, events } = await clients.online({ url: t.wsUrl, token: () => t.token('ann') })
    // 256 × 6 + 3 = 1,539 B of JSON each: 41 of them in one frame (≈ 63.1 KB, under 64 KiB), 2 in a second.
    const topics = Array.from({ length: 43 }, (_, i) => `${String(i).padStart(3, '0')}${'\u0001'.repeat(253)}`)
    await subscribeAll(t, client, events, topics)
  })
})

// The server allows a user rateBurst (60) frames at once and closes the socket with 4029 past it: the
// client puts the topics of one task, and of a restore, in as few frames as it can.
describe("NotificationClient: topic frames and the user's frame budget", () => {
  it('unsubscribing 100 topics in one task (a page or component unmounting) sends them together: the socket is kept', async () => {
    const t = await start({ dev: true })
    const { client, events } = await clients.online({ url: t.wsUrl, token: () => t.token('ann') })
    const offs = Array.from({ length: 100 }, (_, i) => client.subscribe(`topic-${i}`))
    // Let the user's frame budget fill again after the subscribe.
    await new Promise((r) => setTimeout(r, 3500))
    expect(client.state).toBe('online')
    for (const off of offs) off()
    await holds(() => {
      const closes = events.statuses.filter((s) => s.from === 'online').map((s) => s.reason)
      expect(closes, 'the server cut the socket for its frame budget').toEqual([])
    }, 1500)
    await expect.poll(async () => (await storedTopics(t.url, 'ann')).length).toBe(0)
  })

  it('three belfry/shared tabs of a user restoring 1,000 topics each through the one socket stay online', async () => {
    const t = await start({ limits: { maxSubscriptionsPerUser: 1000 } })
    const locks = new FakeLocks()
    const topics = Array.from({ length: 1000 }, (_, i) => `t${i}`)
    const tabs: Recorder[] = []
    for (let i = 0; i < 3; i++) {
      const client = new NotificationClient({
        url: t.wsUrl,
        token: () => t.token('ann'),
        WebSocket,
        backoff: FAST_BACKOFF,
        storage: memoryStorage(),
        connection: sharedConnection({ beat: 50, stale: 200, locks: locks.forTab(`tab${i}`), BroadcastChannel }),
      })
      onTestFinished(() => client.close())
      const events = record(client)
      // Subscribed before it connects: the restore after auth sends them.
      for (const topic of topics) client.subscribe(topic)
      client.connect()
      await client.ready({ timeout: 5000 })
      tabs.push(events)
    }
    // Every tab restores its topics through the leader's socket, at every reconnect: short topics go 500
    // a frame (2 frames a tab), not a fixed 40 (25 a tab, 75 in all, past rateBurst's 60).
    await holds(() => {
      const cuts = tabs.flatMap((events) => events.statuses.filter((s) => s.reason === 'close 4029'))
      expect(cuts, 'the shared socket was cut for its frame budget (4029)').toEqual([])
    }, 3000)
  })
})

/** The topic frames of a task go out at its end: a request made in a later task follows them, and its reply follows theirs. */
const handled = async (client: { history(p: { limit: number }): Promise<unknown> }) => {
  await new Promise((resolve) => setTimeout(resolve, 0))
  await client.history({ limit: 1 })
}

describe('NotificationClient: topics given up go out before topics taken (maxSubscriptionsPerUser)', () => {
  // An app at the user's subscription limit swaps one topic for another (a route change: one component
  // unmounts and its stop() runs, the next mounts and subscribes). It never holds more than the limit:
  // the server, which handles a connection's frames in order, must see the unsubscribe first.
  it('giving a topic up and subscribing another in one task, at the limit, subscribes the new one', async () => {
    const s = await start({ limits: { maxSubscriptionsPerUser: 2 } })
    const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token('ann') })
    const stopA = client.subscribe('a')
    client.subscribe('b')
    await handled(client) // frames are handled in order: both subscribes are done
    expect(events.errors).toEqual([])

    // One task: 'a' given up first, then 'c' taken.
    stopA()
    client.subscribe('c')
    await handled(client) // the task's topic frames are answered

    expect(events.errors.map((e) => e.message)).toEqual([])
    expect((await s.server.publish('c', { title: 'for c', body: '' })).recipients).toBe(1)
    expect((await s.server.publish('a', { title: 'not for ann', body: '' })).recipients).toBe(0)
    await vi.waitFor(() => expect(events.notifications.map((n) => n.title)).toEqual(['for c']))
  })

  it('the same swap made while offline, at the limit, subscribes the new one at the restore after the next auth', async () => {
    const s = await start({ limits: { maxSubscriptionsPerUser: 2 } })
    const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token('ann') })
    const stopA = client.subscribe('a')
    client.subscribe('b')
    await handled(client)
    await s.stop()
    await expect.poll(() => client.state).not.toBe('online')
    stopA()
    client.subscribe('c')
    await s.restart() // same database: the user holds a and b
    await vi.waitFor(() => expect(events.count('online')).toBe(2))
    await handled(client)

    expect(events.errors.filter((e) => e.name === 'ProtocolError').map((e) => e.message)).toEqual([])
    expect((await s.server.publish('c', { title: 'for c', body: '' })).recipients).toBe(1)
  })
})

// The client holds the topics it asked for as its own and sends them again only after an auth: a topic
// change the store failed, with the connection left open, would hold until the next reconnect.
describe('a subscribe or unsubscribe the store fails (the database briefly lost)', () => {
  /** A server whose store fails the next call of `method` once. */
  async function failingOnce(method: 'subscribe' | 'unsubscribe') {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-topics-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const store = new SqliteStore(join(dir, 'belfry.db'))
    const real = store[method].bind(store) as (...args: unknown[]) => Promise<unknown>
    const fail = { armed: false }
    store[method] = ((...args: unknown[]) => {
      if (!fail.armed) return real(...args)
      fail.armed = false
      return Promise.reject(new Error('the database went away'))
    }) as never
    return { s: await start({ store }), fail }
  }

  it('a subscribe: the connection closes (1011) and the topic is subscribed after the reconnect, its notifications delivered', async () => {
    const { s, fail } = await failingOnce('subscribe')
    const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token('ann') })
    fail.armed = true
    client.subscribe('deploys')
    await vi.waitFor(() => expect(events.count('online')).toBe(2))
    await handled(client)
    expect(events.statuses.filter((st) => st.from === 'online').map((st) => st.reason)).toEqual(['close 1011'])
    expect((await s.server.publish('deploys', { title: 'shipped', body: '' })).recipients).toBe(1)
    await vi.waitFor(() => expect(events.notifications.map((n) => n.title)).toEqual(['shipped']))
  })

  // Not an authorizeSubscribe that throws (an app's lookup that fails for one topic every time): closed, the
  // client would bring the same topic back at every auth, and the connection would flap for good.
  it('an authorizeSubscribe that throws costs that topic alone (an internal error, not refused): the others of its batch are subscribed, the connection stays', async () => {
    const s = await start({
      authorizeSubscribe: async (_user, topic) => {
        if (topic === 'org:acme') throw new Error('invalid input syntax for type integer: "acme"')
        return true
      },
    })
    const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token('ann') })
    client.subscribe('org:acme')
    client.subscribe('deploys')
    await vi.waitFor(() => expect(events.errors.map((e) => [e.code, e.message])).toEqual([['internal', 'could not authorize "org:acme"']]))
    expect((await s.server.publish('deploys', { title: 'shipped', body: '' })).recipients).toBe(1)
    // A loop would show within the test client's 50–300 ms backoff.
    await holds(() => expect(events.statuses.filter((st) => st.from === 'online')).toEqual([]), 1500)
  })

  it('an authorizeSubscribe that throws at an auth’s check of the stored topics keeps them, and the auth goes through', async () => {
    const failing = { on: false }
    const s = await start({
      authorizeSubscribe: async () => {
        if (failing.on) throw new Error('the app’s database is away')
        return true
      },
    })
    const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token('ann') })
    client.subscribe('deploys')
    await handled(client)
    failing.on = true
    const again = await clients.online({ url: s.wsUrl, token: () => s.token('ann') })
    expect(again.client.state).toBe('online')
    expect((await s.server.publish('deploys', { title: 'shipped', body: '' })).recipients).toBe(1)
    await vi.waitFor(() => expect(again.events.notifications.map((n) => n.title)).toEqual(['shipped']))
    expect(events.errors).toEqual([])
  })

  // Not refused: a client drops a refused topic for good, and the function subscribe() returned would end nothing.
  it('a topic the check throws for at a restore stays the app’s: still delivered, and given up when the app gives it up', async () => {
    const failing = { on: false }
    const s = await start({
      dev: true,
      authorizeSubscribe: async () => {
        if (failing.on) throw new Error('the app’s database is away')
        return true
      },
    })
    const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token('ann') })
    const stop = client.subscribe('deploys')
    await handled(client)
    // The app's lookup fails for a moment, as the socket drops: the auth keeps 'deploys', its restore gets internal.
    failing.on = true
    await fetch(`${s.url}/api/dev/drop?user=ann`, { method: 'POST' })
    await vi.waitFor(() => expect(events.count('online')).toBe(2))
    await vi.waitFor(() => expect(events.errors.map((e) => e.code)).toEqual(['internal']))
    failing.on = false
    expect((await s.server.publish('deploys', { title: 'still subscribed', body: '' })).recipients).toBe(1)
    stop()
    await handled(client)
    expect((await s.server.publish('deploys', { title: 'given up', body: '' })).recipients).toBe(0)
  })

  it('an unsubscribe: the connection closes (1011) and the topic is given up after the reconnect', async () => {
    const { s, fail } = await failingOnce('unsubscribe')
    const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token('ann') })
    const stop = client.subscribe('deploys')
    await handled(client)
    fail.armed = true
    stop()
    await vi.waitFor(() => expect(events.count('online')).toBe(2))
    await handled(client)
    expect((await s.server.publish('deploys', { title: 'not for ann', body: '' })).recipients).toBe(0)
  })
})
