import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { AuthError, RequestError } from '../../../src/index.js'
import { cleanup, connected, createClient, jwt, note, startMockServer, tick } from '../../helpers/mock-server.js'

/**
 * The app's handlers run inside the client's own work (a status change, a
 * delivery, an error): whatever they call there must hold. Also: input the
 * client cannot use, from its options or from the server.
 */

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

describe('close() from inside a handler is final', () => {
  it('on `reconnecting`: no retry, no new socket', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server, { backoff: () => 100 }))
    client.on('status', (e) => e.to === 'reconnecting' && client.close())
    server.peer.close(1001)
    await tick(60_000)
    expect(client.state).toBe('closed')
    expect(server.peers).toHaveLength(1)
  })

  it('on `connecting`: the connect timeout does not bring it back', async () => {
    const server = startMockServer({ auth: false })
    const t = createClient(server, { connectTimeout: 1000, backoff: () => 100 })
    t.client.on('status', (e) => e.to === 'connecting' && t.client.close())
    t.client.connect()
    await tick(60_000)
    expect(t.client.state).toBe('closed')
    expect(t.log.statuses.map((s) => s.to)).toEqual(['connecting', 'closed'])
  })

  it('on `online`: no heartbeat keeps running', async () => {
    const server = startMockServer()
    const t = createClient(server, { pingInterval: 1000 })
    t.client.on('status', (e) => e.to === 'online' && t.client.close())
    t.client.connect()
    await tick(100)
    expect(t.client.state).toBe('closed')
    expect(vi.getTimerCount()).toBe(0)
    await tick(10_000)
    expect(server.sent('ping')).toEqual([])
  })

  // Regression: the close() inside going online emitted online → closed, of an online the app never heard of.
  it('on `unread` as the client goes online: every status event starts where the last one ended', async () => {
    const server = startMockServer({ auth: { seq: 5, unreadCount: 3 } })
    const { client, log } = createClient(server)
    client.on('unread', () => client.close())
    client.connect()
    await tick()
    expect(client.state).toBe('closed')
    const hops = log.statuses.map((e) => [e.from, e.to])
    for (let i = 1; i < hops.length; i++) expect(hops[i]![0]).toBe(hops[i - 1]![1])
    expect(vi.getTimerCount()).toBe(0)
  })

  it('on `unread` as the token names another user (the count back to 0): no socket opens for that user', async () => {
    let user = 'u1'
    const server = startMockServer({ auth: { seq: 5, unreadCount: 3 } })
    const { client } = await connected(createClient(server, { token: () => jwt(user), backoff: () => 100 }))
    client.on('unread', () => client.close())
    user = 'u2'
    server.peer.close(1006)
    await tick(60_000)
    expect(client.state).toBe('closed')
    expect(server.peers).toHaveLength(1)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('on `error` from a failing token provider: no retry', async () => {
    const server = startMockServer()
    const t = createClient(server, {
      token: () => {
        throw new Error('no token today')
      },
      backoff: () => 100,
    })
    t.client.on('error', () => t.client.close())
    t.client.connect()
    await tick(60_000)
    expect(t.client.state).toBe('closed')
    expect(server.peers).toHaveLength(0)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('on `notification`: the pending ack goes out at once and no timer is left', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server, { ackDelay: 1000 }))
    client.on('notification', () => client.close())
    server.peer.send(note(1))
    await tick()
    expect(client.state).toBe('closed')
    expect(server.sent('ack')).toEqual([{ type: 'ack', seq: 1 }])
    expect(vi.getTimerCount()).toBe(0)
  })
})

describe('requests around auth', () => {
  it('a request made on `online` goes out once', async () => {
    const server = startMockServer()
    const t = createClient(server)
    t.client.on('status', (e) => {
      if (e.to === 'online') void t.client.history().catch(() => {})
    })
    t.client.connect()
    await tick()
    expect(server.sent('history')).toHaveLength(1)
  })

  it('a topic subscribed on `online` goes out once, after the restored ones', async () => {
    const server = startMockServer()
    const t = createClient(server)
    t.client.subscribe('old')
    t.client.on('status', (e) => {
      if (e.to === 'online') t.client.subscribe('new')
    })
    t.client.connect()
    await tick()
    expect(server.sent('subscribe').map((f) => f.topics)).toEqual([['old'], ['new']])
  })

  it('unsubscribe and subscribe again while offline: the server ends up subscribed', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server, { backoff: () => 100 }))
    const stop = client.subscribe('news')
    server.peer.close(1006)
    await tick()
    stop()
    client.subscribe('news')
    await tick(200)
    expect(client.state).toBe('online')
    // The subscribe cancels the pending unsubscribe: nothing to unsubscribe after the auth.
    expect(server.peer.frames.map((f) => `${f.type}${f.topics ? ` ${f.topics}` : ''}`)).toEqual(['auth', 'subscribe news'])
  })

  it('requests queued before an article-protocol server is met reject as unsupported, and are not sent to it', async () => {
    const server = startMockServer({ auth: (peer) => peer.send({ type: 'auth_success', message: 'ok', userId: 'u1' }) })
    const t = createClient(server)
    const page = expect(t.client.history()).rejects.toThrow(new RequestError('not supported by this server'))
    t.client.connect()
    await tick()
    await page
    expect(server.peer.frames.map((f) => f.type)).toEqual(['auth'])
  })
})

describe('what the client cannot use', () => {
  it('a URL no WebSocket accepts is a TypeError naming options.url', () => {
    for (const url of ['localhost:3000/ws', 'ftp://example.com/ws', 'not a url', '/ws']) {
      expect(() => createClient(startMockServer(), { url }), url).toThrow(
        new TypeError(
          `belfry: options.url must be a ws(s): or http(s): URL (absolute outside a page) or a function yielding one; got "${url}"`,
        ),
      )
    }
  })

  it('a URL provider that yields a bad URL, or a token provider a non-string, is reported and retried, not sent', async () => {
    const server = startMockServer()
    let calls = 0
    const t = createClient(server, {
      url: () => (++calls === 1 ? 'localhost:3000/ws' : server.url),
      backoff: () => 100,
    })
    t.client.connect()
    await tick(200)
    expect(t.log.errors.map((e) => [e.message, (e.cause as Error).message])).toEqual([['url or token provider failed', 'bad url']])
    expect(t.client.state).toBe('online')

    const other = startMockServer()
    const u = createClient(other, { token: () => undefined as unknown as string, backoff: () => 100 })
    u.client.connect()
    await tick(50)
    expect(u.log.errors.map((e) => (e.cause as Error).message)).toEqual(['bad token'])
    expect(other.peers).toHaveLength(0)
  })

  it('http(s) URLs are taken as ws(s), without a fragment', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server, { url: `${server.url.replace('ws:', 'http:')}#frag` }))
    expect(client.state).toBe('online')
  })

  it('a non-ASCII user id in the token is sent as the same user id', async () => {
    const server = startMockServer()
    await connected(createClient(server, { token: jwt('józef-東京') }))
    expect(server.peer.frames[0]).toMatchObject({ type: 'auth', userId: 'józef-東京' })
  })

  it('an auth_success with a bad unreadCount is reported, not taken', async () => {
    const server = startMockServer({ auth: (peer) => peer.send({ type: 'auth_success', message: 'ok', seq: 3, unreadCount: 'many' }) })
    const t = createClient(server)
    t.client.connect()
    await tick()
    expect(t.client.state).toBe('authenticating')
    expect(t.log.errors.map((e) => e.name)).toEqual(['ProtocolError'])
    expect(t.log.unread).toEqual([])
  })

  it('a notification without seq from a server that has seqs is reported and dropped; dedupe holds', async () => {
    const server = startMockServer()
    const { log } = await connected(createClient(server))
    server.peer.send(note(1))
    const { seq: _, ...noSeq } = note(2)
    server.peer.send(noSeq)
    server.peer.send(note(1))
    server.peer.send(note(2))
    await tick()
    expect(log.notifications.map((n) => n.seq)).toEqual([1, 2])
    expect(log.errors.map((e) => e.message)).toEqual(['notification without seq'])
  })

  // Regression: it passed, and the unread count became undefined, then NaN.
  it('an auth_success with a seq and no unreadCount is reported, not taken', async () => {
    const server = startMockServer({ auth: (peer) => peer.send({ type: 'auth_success', message: 'ok', userId: 'u1', seq: 3 }) })
    const t = createClient(server)
    t.client.connect()
    await tick()
    expect(t.client.state).toBe('authenticating')
    expect(t.log.errors.map((e) => e.name)).toEqual(['ProtocolError'])
    expect(t.client.unreadCount).toBe(0)
  })

  // Regression: it was handed to the app, without an id.
  it('a notification without id from a server that has seqs is reported and dropped', async () => {
    const server = startMockServer()
    const { log } = await connected(createClient(server))
    const { id: _, ...noId } = note(1)
    server.peer.send(noId)
    server.peer.send(note(2))
    await tick()
    expect(log.notifications.map((n) => n.seq)).toEqual([2])
    expect(log.errors.map((e) => e.name)).toEqual(['ProtocolError'])
  })

  it('4002 with a token that is a string, not a provider: AuthError and stop (it cannot be refreshed)', async () => {
    const server = startMockServer({ auth: (peer) => peer.close(4002, 'token expired') })
    const t = createClient(server, { token: jwt('u1') })
    t.client.connect()
    await tick(60_000)
    expect(t.client.state).toBe('closed')
    expect(server.peers).toHaveLength(1)
    expect(t.log.errors).toHaveLength(1)
    expect(t.log.errors[0]).toBeInstanceOf(AuthError)
  })
})

describe('cursor and acks when the server knows less', () => {
  it('acks again from the server’s numbering after it started over', async () => {
    // A new database behind the second connection: the user's latest seq is 0 there.
    const server = startMockServer({ auth: (peer) => peer.authSuccess({ seq: peer.index === 0 ? 10 : 0 }) })
    const { client, log } = await connected(createClient(server, { backoff: () => 100, ackDelay: 100 }))
    for (let seq = 1; seq <= 10; seq++) server.peer.send(note(seq))
    await tick(200)
    expect(server.sent('ack')).toEqual([{ type: 'ack', seq: 10 }])
    server.peer.close(1001)
    await tick(300)
    expect(client.state).toBe('online')
    for (let seq = 1; seq <= 3; seq++) server.peer.send(note(seq))
    await tick(200)
    expect(log.notifications.map((n) => n.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2, 3])
    expect(server.peers[1]!.frames.filter((f) => f.type === 'ack')).toEqual([{ type: 'ack', seq: 3 }])
  })
})
