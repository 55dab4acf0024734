import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { memoryStorage } from '../../../src/index.js'
import { createStore, GET, LIST, RETAIN } from '../../../src/react/store.js'
import { FakeChannel, FakeLocks, tabConnection } from '../../helpers/locks.js'
import { cleanup, connected, createClient, type Frame, note, outcome, startMockServer, tick } from '../../helpers/mock-server.js'

/**
 * docs/protocol.md, "belfry's client against the article's server": the client detects the article's server
 * at auth, and "For that connection the client works in a live-only mode"; "Requests that were waiting for the
 * connection reject the same way when it comes online" — only once the server it reaches turns out to be the
 * article's. README ("Errors"): a `RequestError` is "not supported by an article-protocol server". A request made
 * while the client is down waits for the connection and goes out after auth (src/client/requests.ts).
 *
 * The same URL may answer with belfry's server next: belfry takes the article's clients on `/` precisely so that
 * the article's server can be replaced by it. A request made while the client reconnects after a connection to
 * the article's server must wait for the next server, and go out to it when that one speaks belfry's protocol.
 */

beforeEach(() => {
  vi.useFakeTimers()
  FakeChannel.reset()
})
afterEach(cleanup)

describe('live-only mode belongs to the article server’s connection', () => {
  // A client on a socket of its own, and a belfry/shared leader (whose tabs read its connection's mode).
  it.each([
    ['on its own socket', () => ({})],
    ['leading belfry/shared', () => ({ connection: tabConnection(new FakeLocks(), 'a') })],
  ])(
    'a history() made while reconnecting after the article’s server goes to the belfry server the client reaches next (%s)',
    async (_, options) => {
      // The first connection meets the article's server (auth_success without seq); the next, belfry's.
      const server = startMockServer({
        auth: (peer) =>
          peer.index === 0
            ? peer.send({ type: 'auth_success', message: 'Connected to notification service' })
            : peer.authSuccess({ seq: 3, unreadCount: 1, pingAcks: true }),
      })
      const { client } = createClient(server, { backoff: () => 100, ...options() })
      client.connect()
      await tick(100)
      expect(client.state).toBe('online')
      server.peer.close(1006) // the article's server is replaced (a deploy of belfry on the same URL)
      await tick()
      expect(client.state).toBe('reconnecting')

      const page = outcome(client.history({ limit: 5 }))
      await tick(200)
      expect(client.state).toBe('online')
      expect(server.peers).toHaveLength(2)
      // Not rejected as "not supported" before any server was reached: sent to the one that was.
      expect(page.error).toBeUndefined()
      const h = server.peers[1]!.frames.find((f) => f.type === 'history') as Frame | undefined
      expect(h).toMatchObject({ type: 'history', limit: 5 })
      server.peer.send({ type: 'history', items: [], requestId: h!.requestId })
      await tick()
      expect(page.value).toMatchObject({ items: [] })
    },
  )

  it('while reconnecting after a belfry server, the same request waits and is rejected only once the article’s server answers', async () => {
    // Control (holds today): the other way round the request waits for the server it reaches.
    const server = startMockServer({
      auth: (peer) =>
        peer.index === 0 ? peer.authSuccess({ seq: 0 }) : peer.send({ type: 'auth_success', message: 'Connected to notification service' }),
    })
    const { client } = await connected(createClient(server, { backoff: () => 100 }))
    server.peer.close(1006)
    await tick()
    const page = outcome(client.history())
    await tick(20)
    expect(page.done).toBe(false)
    await tick(200)
    expect(client.state).toBe('online')
    expect(page.error).toMatchObject({ name: 'RequestError', message: 'not supported by this server' })
  })
})

/**
 * README ("Events"/status) and src/client/link.ts (StatusEvent.expired): "With `online`: true when the server's
 * retention removed notifications that followed this client's cursor before it got them". docs/protocol.md,
 * "belfry's client against the article's server": that server has no seq, no retention, no `oldestSeq`; the
 * client works live only "for that connection". An `online` event on the article's server cannot say `expired`:
 * nothing of this client's cursor was removed there. It did, repeating the last belfry auth's word at every
 * online on the article's server that follows it (a load balancer that mixes both during a migration, or a
 * rollback to the article's server).
 */

describe('the article’s server after a belfry server whose retention expired the cursor', () => {
  it('its online status event does not say expired', async () => {
    const storage = memoryStorage()
    storage.setItem('belfry:cursor:u1', '5')
    const server = startMockServer({
      auth: (peer) =>
        peer.index === 0
          ? // belfry's server: retention removed everything up to 8; the client's cursor is 5.
            peer.send({ type: 'auth_success', message: 'ok', userId: 'u1', seq: 10, unreadCount: 0, oldestSeq: 8, pingAcks: true })
          : peer.send({ type: 'auth_success', message: 'Connected to notification service' }),
    })
    const { client, log } = await connected(createClient(server, { storage, backoff: () => 100 }))
    expect(log.statuses.filter((s) => s.to === 'online').map((s) => s.expired)).toEqual([true])
    server.peer.close(1006)
    await tick(200)
    expect(client.state).toBe('online')
    expect(server.peers).toHaveLength(2)
    const onlines = log.statuses.filter((s) => s.to === 'online')
    expect(onlines).toHaveLength(2)
    expect(onlines[1]!.expired).toBeFalsy()
  })
})

// Regression: a topic given up on the article's server was dropped from the topics, never put among those to give up:
// belfry's server, which keeps the subscription, was never told, and the user kept getting the topic.
describe('a topic given up while online on the article’s server', () => {
  it('is unsubscribed at the next auth on belfry’s server (nothing is sent to the article’s)', async () => {
    // belfry's server, then the article's (the same URL), then belfry's again.
    const server = startMockServer({
      auth: (peer) =>
        peer.index === 1
          ? peer.send({ type: 'auth_success', message: 'Connected to notification service' })
          : peer.authSuccess({ seq: 0, pingAcks: true }),
    })
    const { client } = await connected(createClient(server, { backoff: () => 100 }))
    const stop = client.subscribe('deploys')
    await tick()
    expect(server.peers[0]!.frames.filter((f) => f.type === 'subscribe')).toEqual([{ type: 'subscribe', topics: ['deploys'] }])
    // belfry's server stores the subscription (the mock answers nothing: no reply needed here).

    server.peer.close(1001) // belfry's server replaced by the article's on the same URL
    await tick(200)
    expect(client.state).toBe('online')
    expect(server.peers).toHaveLength(2)

    stop() // the user gives the topic up while on the article's server: nothing can be sent there
    await tick()
    expect(server.peers[1]!.frames.map((f) => f.type)).toEqual(['auth'])

    server.peer.close(1001) // back to belfry's server
    await tick(200)
    expect(client.state).toBe('online')
    expect(server.peers).toHaveLength(3)
    const third = server.peers[2]!.frames
    // The give-up reaches the server that keeps the subscription.
    expect(third.filter((f) => f.type === 'unsubscribe').flatMap((f) => f.topics as string[])).toContain('deploys')
    expect(third.filter((f) => f.type === 'subscribe').flatMap((f) => f.topics as string[])).not.toContain('deploys')
  })
})

// Regression: the list sorted a seq of 0 below every belfry notification, and a full list cut the article's at once.
describe('belfry/react’s list after the URL’s server went from belfry’s to the article’s', () => {
  it('lists a notification from the article’s server first, and keeps it when the list is full', async () => {
    const server = startMockServer({
      auth: (peer) =>
        peer.index === 0
          ? peer.authSuccess({ seq: 0, pingAcks: true })
          : peer.send({ type: 'auth_success', message: 'Connected to notification service' }),
    })
    const t = createClient(server, { backoff: () => 100 })
    const store = createStore(t.client, 3) // maxItems 3
    store[GET]()
    const release = store[RETAIN]()
    try {
      await tick()
      expect(t.client.state).toBe('online')
      for (const seq of [1, 2, 3]) server.peer.send(note(seq))
      await tick()
      expect(store[0][LIST].notifications.map((n) => n.seq)).toEqual([3, 2, 1])

      server.peer.close(1001) // the article's server takes the URL over
      await tick(200)
      expect(t.client.state).toBe('online')
      expect(server.peers).toHaveLength(2)

      server.peer.send({
        type: 'notification',
        title: 'New Message',
        body: 'from the article’s server',
        priority: 'high',
        timestamp: new Date().toISOString(),
      })
      await tick()
      expect(t.log.notifications.map((n) => n.title)).toContain('New Message') // the client handed it to the app
      // The newest notification is in the list (the list was full: it must not be the one cut), first.
      expect(store[0][LIST].notifications.map((n) => n.title)).toContain('New Message')
      expect(store[0][LIST].notifications[0]?.title).toBe('New Message')
    } finally {
      release()
    }
  })
})

// Regression: the owed page, merged with a `next`, dropped the article's server's notifications as older than it (0 < next).
describe('belfry/react: the owed page of a client found started on the article’s server', () => {
  it('keeps the article server’s notifications when it merges with a next page', async () => {
    const server = startMockServer({
      auth: (peer) =>
        peer.index === 0
          ? peer.send({ type: 'auth_success', message: 'Connected to notification service' })
          : peer.authSuccess({ seq: 150, pingAcks: true }),
    })
    const t = await connected(createClient(server, { backoff: () => 100 }))
    const store = createStore(t.client) // maxItems 100
    store[GET]()
    const release = store[RETAIN]()
    try {
      await tick()
      server.peer.send({
        type: 'notification',
        title: 'from the article’s server',
        body: '',
        priority: 'high',
        timestamp: new Date().toISOString(),
      })
      await tick()
      expect(store[0][LIST].notifications.map((n) => n.title)).toEqual(['from the article’s server'])

      server.peer.close(1001) // belfry's server takes the URL back
      await tick(200)
      expect(t.client.state).toBe('online')
      const h = server.peers[1]!.frames.find((f) => f.type === 'history') as Frame & { requestId: string }
      expect(h).toBeDefined()
      const items = Array.from({ length: 100 }, (_, i) => note(150 - i))
      server.peer.send({ type: 'history', items, next: 51, requestId: h.requestId })
      await tick()
      const titles = store[0][LIST].notifications.map((n) => n.title)
      expect(titles).toHaveLength(100)
      expect(titles).toContain('from the article’s server')
    } finally {
      release()
    }
  })
})
