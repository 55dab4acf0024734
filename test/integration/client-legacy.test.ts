import { afterEach, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import { type JsonObject, type Notification, RequestError } from '../../src/index.js'
import { createStore, GET, LIST, RETAIN, type Store } from '../../src/react/store.js'
import { mintToken } from '../../src/server/index.js'
import { type ArticleServer, startArticleServer } from '../helpers/article-server.js'
import { ClientPool, holds } from '../helpers/client.js'
import { startServer, type TestServer } from '../helpers/server.js'

/**
 * Compatibility with the article's protocol, both ways: belfry's client against the
 * article's server (plain live delivery: no resume, no acks, no requests), and
 * the article's own browser client against belfry's server.
 */

let article: ArticleServer | undefined
let t: TestServer | undefined
const clients = new ClientPool()
const sockets: WebSocket[] = []

afterEach(async () => {
  clients.closeAll()
  for (const ws of sockets.splice(0)) ws.close()
  await article?.close()
  article = undefined
  await t?.dispose()
  t = undefined
})

/** The article's server never checks the token; a real JWT lets the client read its `sub`. */
const articleToken = (userId: string) => mintToken('the-article-never-checks-this-0123', userId)

/**
 * Sends these to user123 within one millisecond, as a burst: tried again (up to 20 times) in the rare case
 * that a millisecond boundary falls inside it. The last burst's notifications, and how many came in all.
 */
async function inOneMs(a: ArticleServer, events: { notifications: Notification[] }, sends: Parameters<ArticleServer['sendToUser']>[1][]) {
  let pushed = 0
  let same = false
  for (let tries = 0; tries < 20 && !same; tries++) {
    const before = Date.now()
    for (const send of sends) a.sendToUser('user123', send)
    same = Date.now() === before
    pushed += sends.length
    await vi.waitFor(() => expect(events.notifications.length).toBe(pushed))
  }
  expect(same).toBe(true)
  return { burst: events.notifications.slice(-sends.length), pushed }
}

/**
 * belfry's client online on the article's server (a new one, kept in `article` for the cleanup), with a
 * belfry/react list store of its notifications retained while `run` runs.
 */
async function withListedArticleClient(
  run: (a: ArticleServer, events: Awaited<ReturnType<ClientPool['online']>>['events'], store: Store<JsonObject>) => Promise<void>,
): Promise<void> {
  article = await startArticleServer()
  const a = article
  const { client, events } = await clients.online({ url: a.url, token: () => articleToken('user123') })
  const store = createStore(client)
  store[GET]()
  const release = store[RETAIN]()
  try {
    await run(a, events, store)
  } finally {
    release()
  }
}

describe('belfry client → the article’s server', () => {
  it('authenticates, gets live notifications with the article’s fields, and speaks nothing beyond auth', async () => {
    article = await startArticleServer()
    const a = article
    const { client, events } = await clients.online({
      url: a.url,
      token: () => articleToken('user123'),
      ackDelay: 10, // an ack, ping or resume would go out well within the window below
      pingInterval: 20,
      pongTimeout: 1000,
    })
    expect(client.state).toBe('online')
    expect(a.frames).toEqual([expect.objectContaining({ type: 'auth', token: expect.any(String) })])

    a.broadcast({ title: 'System Maintenance', body: 'Scheduled maintenance in 1 hour', priority: 'medium' })
    a.broadcast({ title: 'New Message', body: 'You have received a new message', priority: 'high' })
    await vi.waitFor(() => expect(events.notifications).toHaveLength(2))
    expect(events.notifications[1]).toMatchObject({ title: 'New Message', body: 'You have received a new message', priority: 'high' })
    expect(events.notifications.map((n) => n.title)).toEqual(['System Maintenance', 'New Message'])
    for (const n of events.notifications) expect(Number.isNaN(Date.parse(n.timestamp))).toBe(false)

    await holds(() => {
      expect(a.frames.map((f) => f.type)).toEqual(['auth'])
      expect(client.state).toBe('online')
    }, 300)
    await expect(client.history()).rejects.toBeInstanceOf(RequestError)
    await expect(client.markAllRead()).rejects.toBeInstanceOf(RequestError)
    client.close() // a closing client acks what it delivered; there is nothing to ack here
    await vi.waitFor(() => expect(a.connections(a.auths[0])).toBe(0))
    expect(a.frames.filter((f) => ['ack', 'resume', 'ping', 'history', 'mark_read'].includes(String(f.type)))).toEqual([])
    expect(events.errors).toEqual([])
  })

  // The auth frame must carry `userId`, the token's sub (src/client/notification-client.ts, #auth): the
  // article's server files a socket under the frame's `userId` and never reads the token, so without it
  // the client would be filed under `undefined` and the article's sendToUser(userId, …) would never reach
  // it — only broadcasts would. The README promises live delivery against that server.
  it('receives what the article’s sendToUser sends to its user', async () => {
    article = await startArticleServer()
    const a = article
    const { events } = await clients.online({ url: a.url, token: () => articleToken('user123') })
    a.sendToUser('user123', { title: 'New Message', body: 'You have received a new message', priority: 'high' })
    await vi.waitFor(() => expect(events.notifications).toHaveLength(1), { timeout: 1000 })
    expect(events.notifications[0]).toMatchObject({ title: 'New Message', body: 'You have received a new message', priority: 'high' })
    expect(a.auths).toEqual(['user123'])
  })

  // The article's server spreads the publisher's object into the frame as it is; a publisher that persists its
  // notifications (as the article recommends) sends the database row's numeric id along.
  it('hands the app a notification whose publisher gave it a numeric id, the id as a string', async () => {
    article = await startArticleServer()
    const a = article
    const { events } = await clients.online({ url: a.url, token: () => articleToken('user123') })
    a.sendToUser('user123', { id: 42, title: 'New Message', body: 'You have received a new message', priority: 'high' })
    a.sendToUser('user123', { title: 'after', body: 'the next one' })
    await vi.waitFor(() => expect(events.notifications.map((n) => n.title)).toContain('after'))
    expect(events.notifications.map((n) => n.title)).toEqual(['New Message', 'after'])
    expect(events.notifications[0]!.id).toBe('42')
    expect(events.errors).toEqual([])
  })

  // The article's server sends no id: the app (belfry/react's list, belfry/desktop's tag and summary) tells
  // notifications apart by id, so each gets one from its frame, the same text on every socket of the user.
  it('gives each notification without an id one from its frame: not empty, and the same in every tab of the user', async () => {
    article = await startArticleServer()
    const a = article
    const tabs = [
      await clients.online({ url: a.url, token: () => articleToken('user123') }),
      await clients.online({ url: a.url, token: () => articleToken('user123') }),
    ]
    a.sendToUser('user123', { title: 'one', body: 'the first' })
    a.sendToUser('user123', { title: 'two', body: 'the second' })
    for (const { events } of tabs) await vi.waitFor(() => expect(events.notifications).toHaveLength(2))
    const [ids, other] = tabs.map(({ events }) => events.notifications.map((n) => n.id))
    expect(ids![0]).not.toBe('')
    expect(ids![1]).not.toBe('')
    expect(ids![0]).not.toBe(ids![1])
    expect(other).toEqual(ids)
    expect(tabs[0]!.events.errors).toEqual([])
  })

  // Its server stamps each send in ms: two sends of the same text in one ms (two "New message" for two
  // messages that came together) are two notifications, and belfry/react's list (each id once) shows both.
  it('gives two sends of the same text in one millisecond two ids, and belfry/react lists both', async () => {
    await withListedArticleClient(async (a, events, store) => {
      const message = { title: 'New message', body: 'You have a new message' }
      const { burst, pushed } = await inOneMs(a, events, [message, message])
      const [x, y] = burst
      expect(x!.id).not.toBe(y!.id)
      expect(store[0][LIST].notifications.filter((n) => n.title === 'New message')).toHaveLength(pushed)
    })
  })

  // The same text with another notification between, in one ms (a burst): the repeat is new too, not only one that
  // comes straight after the first.
  it('gives the same text sent twice in one millisecond, with another notification between, two ids; belfry/react lists all three', async () => {
    await withListedArticleClient(async (a, events, store) => {
      const message = { title: 'New Message', body: 'You have received a new message', priority: 'high' } as const
      const { burst, pushed } = await inOneMs(a, events, [
        message,
        { title: 'New follower', body: 'Ann follows you', priority: 'low' },
        message,
      ])
      expect(burst.map((n) => n.title)).toEqual(['New Message', 'New follower', 'New Message'])
      expect(new Set(burst.map((n) => n.id)).size).toBe(3)
      // belfry/react's list keeps each id once: every notification that came is in it.
      expect(store[0][LIST].notifications).toHaveLength(pushed)
      expect(events.errors).toEqual([])
    })
  })
})

describe('the article’s browser client → belfry’s server', () => {
  it('gets auth_success and the notifications sendToUser and broadcast publish', async () => {
    t = await startServer()
    const s = t
    const token = await s.token('user123')
    const shown: string[] = []
    const frames: Record<string, unknown>[] = []

    // The article's client, as written there (browser WebSocket API, which `ws` implements), on the root path.
    const ws = new WebSocket(s.url.replace(/^http/, 'ws'))
    sockets.push(ws)
    function showNotification(title: unknown, body: unknown, priority: unknown) {
      shown.push(`[${priority}] ${title}: ${body}`)
    }
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: 'auth', userId: 'user123', token }))
    }
    ws.onmessage = (event) => {
      const data = JSON.parse(String(event.data)) as Record<string, unknown>
      frames.push(data)
      if (data.type === 'notification') showNotification(data.title, data.body, data.priority)
    }

    await vi.waitFor(() => expect(frames.map((f) => f.type)).toContain('auth_success'))
    expect(frames.find((f) => f.type === 'auth_success')).toMatchObject({ message: expect.any(String) })
    await vi.waitFor(() => expect(s.server.stats().connections).toBe(1))
    await s.server.sendToUser('user123', { title: 'New Message', body: 'You have received a new message', priority: 'high' })
    await s.server.broadcast({ title: 'System Maintenance', body: 'Scheduled maintenance in 1 hour', priority: 'medium' })
    await vi.waitFor(() =>
      expect(shown).toEqual([
        '[high] New Message: You have received a new message',
        '[medium] System Maintenance: Scheduled maintenance in 1 hour',
      ]),
    )
    const notification = frames.find((f) => f.type === 'notification')
    expect(Number.isNaN(Date.parse(String(notification?.timestamp)))).toBe(false)
  })
})
