import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ProtocolError, RequestError, TimeoutError } from '../../../src/index.js'
import { cleanup, connected, createClient, type Frame, jwt, note, outcome, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

const requestId = (frame: Frame | undefined) => {
  if (typeof frame?.requestId !== 'string') throw new Error('no requestId')
  return frame.requestId
}

describe('requests', () => {
  it('queues history and markRead while not online and sends them after auth; a request connects a client not yet connected', async () => {
    const server = startMockServer({ auth: { seq: 5, unreadCount: 3 } })
    const { client } = createClient(server)
    const history = outcome(client.history({ limit: 5 }))
    const mark = outcome(client.markRead('n1'))
    expect(client.state).toBe('connecting') // without connect(): the first request connects
    await tick()
    const [auth, h, m] = server.peer.frames
    expect(auth?.type).toBe('auth') // the requests come after the auth frame
    expect(h).toEqual({ type: 'history', limit: 5, requestId: requestId(h) })
    expect(m).toEqual({ type: 'mark_read', ids: ['n1'], requestId: requestId(m) })
    expect(requestId(h)).not.toBe(requestId(m))

    const { type: _, ...item } = note(4)
    server.peer.send({ type: 'history', items: [item], next: 4, requestId: requestId(h) })
    server.peer.send({ type: 'read', ids: ['n1'], all: false, seq: 5, unreadCount: 2, requestId: requestId(m) })
    await tick()
    expect(history.value).toMatchObject({ items: [item], next: 4 })
    expect(mark.value).toMatchObject({ ids: ['n1'], all: false, seq: 5, unreadCount: 2 })
    expect(client.unreadCount).toBe(2)
  })

  it('markRead resolves only on its own reply and emits read once', async () => {
    const server = startMockServer({ auth: { seq: 5, unreadCount: 3 } })
    const { client, log } = await connected(createClient(server))
    const all = outcome(client.markAllRead())
    await tick()
    const frame = server.sent('mark_read')[0]
    expect(frame).toEqual({ type: 'mark_read', all: true, seq: 5, requestId: requestId(frame) })
    // A reply to no request of this client's (one that timed out, say) is a change like any other.
    server.peer.send({ type: 'read', ids: [], all: true, seq: 5, unreadCount: 0, requestId: 'someone-else' })
    await tick()
    expect(all.done).toBe(false)
    expect(log.reads).toHaveLength(1)
    server.peer.send({ type: 'read', ids: [], all: true, seq: 5, unreadCount: 0, requestId: requestId(frame) })
    await tick()
    expect(all.value).toMatchObject({ all: true, unreadCount: 0 })
    expect(client.unreadCount).toBe(0)
    expect(log.reads).toHaveLength(2)
  })

  // Regression: any frame with the requestId settled the request: history() resolved { items: undefined },
  // and markRead() answered by a history frame emitted read with unreadCount undefined.
  it('settles only on its own reply type or an error; another frame with its requestId is reported and ignored', async () => {
    const server = startMockServer({ auth: { seq: 5, unreadCount: 3 } })
    const { client, log } = await connected(createClient(server))
    const history = outcome(client.history())
    const mark = outcome(client.markRead('n1'))
    await tick()
    const [h, m] = [requestId(server.sent('history')[0]), requestId(server.sent('mark_read')[0])]
    server.peer.send({ type: 'subscribed', topics: [], requestId: h })
    server.peer.send({ type: 'history', items: [], requestId: m })
    await tick()
    expect([history.done, mark.done]).toEqual([false, false])
    expect(log.errors.map((e) => [e.name, e.message])).toEqual([
      ['ProtocolError', 'bad frame: subscribed'],
      ['ProtocolError', 'bad frame: history'],
    ])
    expect(client.unreadCount).toBe(3)
    expect(log.reads).toEqual([])
    server.peer.send({ type: 'history', items: [note(5)], requestId: h })
    server.peer.send({ type: 'read', ids: ['n1'], all: false, seq: 5, unreadCount: 2, requestId: m })
    await tick()
    expect(history.value).toMatchObject({ items: [{ seq: 5 }] })
    expect(mark.value).toMatchObject({ ids: ['n1'], unreadCount: 2 })
  })

  // Regression: a reply that came after its request timed out was dropped, and the count stayed wrong until the next auth.
  it('takes the unread count of a mark_read reply that comes after its request timed out, and tells the change (read event)', async () => {
    const server = startMockServer({ auth: { seq: 5, unreadCount: 3 } })
    const { client, log } = await connected(createClient(server, { requestTimeout: 1000 }))
    const all = outcome(client.markAllRead())
    await tick()
    const id = requestId(server.sent('mark_read')[0])
    await tick(1000)
    expect(all.error).toBeInstanceOf(TimeoutError)
    server.peer.send({ type: 'read', ids: [], all: true, seq: 5, unreadCount: 0, requestId: id })
    await tick()
    expect(client.unreadCount).toBe(0)
    expect(log.unread).toEqual([3, 0])
    // The only word this client gets of its change: a list (belfry/react's) marks its items by it.
    expect(log.reads).toEqual([{ ids: [], all: true, seq: 5, unreadCount: 0 }])
  })

  it('markAllRead is bounded by the highest seq the client knew of when called (what its unread count covered), not when it is sent', async () => {
    let latest = 5
    const server = startMockServer({ auth: (peer) => peer.authSuccess({ seq: latest, unreadCount: 3 }) })
    const { client } = await connected(createClient(server, { backoff: () => 100 }))
    const marks = () => server.sent('mark_read').map(({ requestId: _, ...f }) => f)
    void outcome(client.markAllRead())
    await tick()
    // Online: the latest seq at auth.
    expect(marks()).toEqual([{ type: 'mark_read', all: true, seq: 5 }])
    // A live notification past it: the count covers it.
    server.peer.send(note(6))
    await tick()
    void outcome(client.markAllRead())
    await tick()
    expect(marks()[1]).toEqual({ type: 'mark_read', all: true, seq: 6 })

    // A read change told at a later seq (its count covers up to 7); then away: a call waits, and goes
    // out after an auth whose latest seq is 9. It still says 7.
    server.peer.send({ type: 'read', ids: ['n2'], all: false, seq: 7, unreadCount: 3 })
    await tick()
    server.peer.close(1006)
    await tick()
    expect(client.state).toBe('reconnecting')
    const waiting = outcome(client.markAllRead())
    latest = 9
    await tick(100 + 20)
    expect(client.state).toBe('online')
    const sent = server.peer.frames.filter((f) => f.type === 'mark_read')
    // The two in flight when the link dropped go again, as they were; the one made away says what was known then.
    expect(sent.map(({ requestId: _, ...f }) => f)).toEqual([
      { type: 'mark_read', all: true, seq: 5 },
      { type: 'mark_read', all: true, seq: 6 },
      { type: 'mark_read', all: true, seq: 7 },
    ])
    // The reply covers up to the bound; the frame at the latest that follows sets the count.
    server.peer.send({ type: 'read', ids: [], all: true, seq: 7, unreadCount: 2, requestId: requestId(sent[2]) })
    server.peer.send({ type: 'read', ids: [], all: false, seq: 9, unreadCount: 2 })
    await tick()
    expect(waiting.value).toEqual({ ids: [], all: true, seq: 7, unreadCount: 2 })
    expect(client.unreadCount).toBe(2)
  })

  it('markAllRead made before the first auth has no bound (the client knows of nothing yet); one made online with an empty inbox marks nothing newer (seq 0)', async () => {
    const server = startMockServer()
    const { client } = createClient(server)
    // A view that marks all read as it is shown, before its new client is online (README, belfry/react): all there is.
    void outcome(client.markAllRead())
    await tick()
    expect(client.state).toBe('online')
    void outcome(client.markAllRead())
    await tick()
    expect(server.sent('mark_read').map(({ requestId: _, ...f }) => f)).toEqual([
      { type: 'mark_read', all: true },
      { type: 'mark_read', all: true, seq: 0 },
    ])
  })

  it('markAllRead made after the token names another user, before that user is online, has no bound (not the last user’s)', async () => {
    let user = 'u1'
    // The new user's auth is answered only when the test says.
    const server = startMockServer({ auth: (peer, f) => f.token === jwt('u1') && peer.authSuccess({ seq: 50, unreadCount: 3 }) })
    const { client } = await connected(createClient(server, { token: () => jwt(user), backoff: () => 100 }))
    user = 'u2'
    server.peer.close(1006)
    await tick(100 + 20)
    // The token was read (the auth frame went out with u2's): the client is that user's, not yet online.
    expect(client.state).toBe('authenticating')
    const mark = outcome(client.markAllRead())
    server.peer.authSuccess({ seq: 7, unreadCount: 1 })
    await tick()
    expect(client.state).toBe('online')
    // u1's 50 would have marked u2's notifications past 7, published after the call and never seen.
    expect(server.sent('mark_read').map(({ requestId: _, ...f }) => f)).toEqual([{ type: 'mark_read', all: true }])
    // Made for the new user: sent, not rejected with the last user's requests.
    expect(mark.done).toBe(false)
  })

  it('rejects with a RequestError beyond maxQueue', async () => {
    const server = startMockServer()
    const { client } = createClient(server, { maxQueue: 2 })
    const a = outcome(client.history())
    const b = outcome(client.markRead(['x']))
    const c = outcome(client.history())
    await tick()
    expect(c.error).toBeInstanceOf(RequestError)
    expect(c.error).toMatchObject({ name: 'RequestError' })
    expect(String((c.error as Error).message)).toContain('maxQueue')
    expect(a.done || b.done).toBe(false)

    client.connect()
    await tick()
    expect(server.sent('history')).toHaveLength(1)
    expect(server.sent('mark_read')).toHaveLength(1)
  })

  it('rejects with a TimeoutError when no reply comes within requestTimeout', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server, { requestTimeout: 3000 }))
    const history = outcome(client.history())
    await vi.advanceTimersByTimeAsync(2999)
    expect(history.done).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(history.error).toBeInstanceOf(TimeoutError)
    expect(history.error).toMatchObject({ name: 'TimeoutError' })

    // A late reply is ignored.
    server.peer.send({ type: 'history', items: [], requestId: requestId(server.sent('history')[0]) })
    await tick()
    expect(client.state).toBe('online')
  })

  it('counts a queued request’s timeout from when it was made', async () => {
    let answer = (): void => {}
    const server = startMockServer({ auth: (peer) => (answer = () => peer.authSuccess()) })
    const { client } = createClient(server, { requestTimeout: 3000, connectTimeout: 60_000 })
    const history = outcome(client.history())
    await vi.advanceTimersByTimeAsync(3000)
    expect(client.state).toBe('authenticating')
    expect(history.error).toBeInstanceOf(TimeoutError)
    answer()
    await tick()
    expect(client.state).toBe('online')
    expect(server.sent('history')).toEqual([])
  })

  it('rejects with a ProtocolError carrying the code of an error reply', async () => {
    const server = startMockServer()
    const { client, log } = await connected(createClient(server))
    const history = outcome(client.history({ before: 0 }))
    await tick()
    const id = requestId(server.sent('history')[0])
    server.peer.send({ type: 'error', code: 'bad_frame', message: 'before must be positive', requestId: id })
    await tick()
    expect(history.error).toBeInstanceOf(ProtocolError)
    expect(history.error).toMatchObject({ name: 'ProtocolError', code: 'bad_frame', message: 'before must be positive' })
    expect(log.errors).toEqual([]) // a reply, not an event
  })

  it('refuses a request of 64,000 bytes of JSON at once with a ProtocolError (bad_frame) that says 64000 bytes or more, and sends one a byte shorter', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server))
    // One id that makes the request's JSON, {"type":"mark_read","ids":["…"]}, `bytes` long.
    const ids = (bytes: number) => ['x'.repeat(bytes - JSON.stringify({ type: 'mark_read', ids: [''] }).length)]
    expect(JSON.stringify({ type: 'mark_read', ids: ids(64_000) })).toHaveLength(64_000)
    const refused = outcome(client.markRead(ids(64_000)))
    const sent = outcome(client.markRead(ids(63_999)))
    await tick()
    expect(refused.error).toBeInstanceOf(ProtocolError)
    // Exactly 64000 is refused: a message saying "over 64000" would be false.
    expect(refused.error).toMatchObject({ code: 'bad_frame', message: 'mark_read: 64000 bytes or more' })
    expect(server.sent('mark_read').map((f) => f.ids)).toEqual([ids(63_999)])
    expect(sent.done).toBe(false)
  })

  it('resends a request that was in flight when the connection dropped', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server, { backoff: () => 100 }))
    const history = outcome(client.history())
    await tick()
    server.peer.close(1006)
    await tick(100 + 20)
    expect(client.state).toBe('online')
    const resent = server.peer.frames.find((f) => f.type === 'history')
    expect(resent).toBeDefined()
    server.peer.send({ type: 'history', items: [], requestId: requestId(resent) })
    await tick()
    expect(history.value).toMatchObject({ items: [] })
  })

  it('close() rejects pending requests and later ones with a RequestError', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server))
    const inFlight = outcome(client.history())
    const mark = outcome(client.markAllRead())
    await tick()
    client.close()
    await tick()
    expect(inFlight.error).toBeInstanceOf(RequestError)
    expect(mark.error).toBeInstanceOf(RequestError)
    await expect(client.history()).rejects.toBeInstanceOf(RequestError)
    await expect(client.markRead('x')).rejects.toBeInstanceOf(RequestError)
  })
})
