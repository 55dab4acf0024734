import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createDelivery } from '../../../src/client/delivery.js'
import { type CursorStorage, memoryStorage, type Notification, type ReadEvent, RequestError } from '../../../src/index.js'
import { FakeChannel, FakeLocks, tabConnection } from '../../helpers/locks.js'
import { cleanup, connected, createClient, jwt, note, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
  FakeChannel.reset()
})
afterEach(cleanup)

const KEY = 'belfry:cursor:u1'

describe('exactly-once delivery', () => {
  it('hands each seq to the app once: duplicates and seq ≤ cursor are dropped', async () => {
    const server = startMockServer()
    const { log } = await connected(createClient(server))
    for (const seq of [1, 2, 2, 1, 3, 3, 2, 4]) server.peer.send(note(seq))
    expect(log.notifications.map((n) => n.seq)).toEqual([1, 2, 3, 4])
    expect(log.notifications[0]).toEqual({
      id: 'n1',
      seq: 1,
      title: 'title 1',
      body: '',
      priority: 'medium',
      timestamp: '2024-01-01T00:00:00.000Z',
      read: false,
    })
  })

  it('persists the cursor under a per-user key', async () => {
    const storage = memoryStorage()
    storage.setItem('belfry:cursor:u2', '99')
    const server = startMockServer()
    await connected(createClient(server, { storage }))
    expect(server.peer.frames[0]).toMatchObject({ since: 0 }) // u2's cursor is not u1's
    server.peer.send(note(1))
    server.peer.send(note(2))
    expect(storage.getItem(KEY)).toBe('2')
    expect(storage.getItem('belfry:cursor:u2')).toBe('99')
  })

  it('sends the stored cursor as since and drops what it already has', async () => {
    const storage = memoryStorage()
    storage.setItem(KEY, '5')
    const server = startMockServer({ auth: { seq: 6 } })
    const { log } = await connected(createClient(server, { storage }))
    expect(server.peer.frames[0]).toMatchObject({ type: 'auth', since: 5 })
    for (const seq of [4, 5, 6]) server.peer.send(note(seq))
    expect(log.notifications.map((n) => n.seq)).toEqual([6])
    expect(storage.getItem(KEY)).toBe('6')
  })

  // Regression: Number(stored) || 0 sent -1 or 1.5 as since (Infinity as null); the server answered the
  // auth frame with an error frame, and the client went round auth timeouts for good, reporting nothing.
  it.each(['-1', '1.5', 'Infinity', '1e400'])('takes a stored cursor that is not a seq (%s) for none: since 0', async (stored) => {
    const storage = memoryStorage()
    storage.setItem(KEY, stored)
    const server = startMockServer({ auth: { seq: 2 } })
    const { log } = await connected(createClient(server, { storage }))
    expect(server.peer.frames[0]).toMatchObject({ type: 'auth', since: 0 })
    server.peer.send(note(1))
    expect(log.notifications.map((n) => n.seq)).toEqual([1])
    expect(storage.getItem(KEY)).toBe('1')
  })

  it('sends since = the last delivered seq on reconnect', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server, { backoff: () => 100 }))
    expect(server.peer.frames[0]).toMatchObject({ since: 0 })
    for (const seq of [1, 2, 3]) server.peer.send(note(seq))
    server.peer.close(1006)
    await tick(100 + 20)
    expect(client.state).toBe('online')
    expect(server.peer.frames[0]).toMatchObject({ type: 'auth', since: 3 })
  })

  it('reads the cursor of the token’s user from storage shared with an earlier client', async () => {
    const storage = memoryStorage()
    const server = startMockServer()
    const first = await connected(createClient(server, { storage }))
    server.peer.send(note(7))
    first.client.close()
    await connected(createClient(server, { storage }))
    expect(server.peer.frames[0]).toMatchObject({ type: 'auth', since: 7 })
  })

  it('switches to the new user’s own cursor when the token provider signs in someone else', async () => {
    const storage = memoryStorage()
    storage.setItem('belfry:cursor:u2', '2')
    let user = 'u1'
    const server = startMockServer()
    const { client, log } = await connected(createClient(server, { storage, token: () => jwt(user), backoff: () => 100 }))
    for (const seq of [1, 2, 3, 4, 5]) server.peer.send(note(seq))
    user = 'u2'
    server.peer.close(1006)
    await tick(100 + 20)
    expect(client.state).toBe('online')
    // u1's 5 is no cursor of u2's: u2 resumes from its own 2 and gets its 3, 4 and 5.
    expect(server.peer.frames[0]).toMatchObject({ type: 'auth', since: 2 })
    for (const seq of [3, 4, 5]) server.peer.send(note(seq))
    expect(log.notifications.map((n) => n.seq)).toEqual([1, 2, 3, 4, 5, 3, 4, 5])
    expect(storage.getItem('belfry:cursor:u2')).toBe('5')
    expect(storage.getItem(KEY)).toBe('5')
  })

  it('follows replay paging: replayed {more: true} → resume {since: last seq}, until more is false', async () => {
    const server = startMockServer({ auth: { seq: 5 } })
    const { log } = await connected(createClient(server))
    for (const seq of [1, 2, 3]) server.peer.send(note(seq))
    server.peer.send({ type: 'replayed', more: true, seq: 3 })
    await tick()
    expect(server.sent('resume')).toEqual([{ type: 'resume', since: 3 }])

    for (const seq of [4, 5]) server.peer.send(note(seq))
    server.peer.send({ type: 'replayed', more: false, seq: 5 })
    await tick()
    expect(server.sent('resume')).toHaveLength(1)
    expect(log.notifications.map((n) => n.seq)).toEqual([1, 2, 3, 4, 5])
  })

  // Regression: any truthy `more` (the string "false") was taken for true.
  it('pages on only for more: true, not for another truthy value', async () => {
    const server = startMockServer({ auth: { seq: 5 } })
    await connected(createClient(server))
    server.peer.send(note(1))
    server.peer.send({ type: 'replayed', more: 'false', seq: 1 })
    server.peer.send({ type: 'replayed', more: 1, seq: 1 })
    await tick()
    expect(server.sent('resume')).toEqual([])
  })

  it('starts over from the server’s numbering when auth_success.seq is below the cursor', async () => {
    const storage = memoryStorage()
    storage.setItem(KEY, '10')
    const server = startMockServer({ auth: { seq: 2 } })
    const { log } = await connected(createClient(server, { storage }))
    expect(server.peer.frames[0]).toMatchObject({ since: 10 })
    expect(storage.getItem(KEY)).toBe('2')
    server.peer.send(note(2)) // still at or below the new cursor
    server.peer.send(note(3))
    expect(log.notifications.map((n) => n.seq)).toEqual([3])
    expect(storage.getItem(KEY)).toBe('3')
  })

  it('delivers an article-protocol server’s notifications (no seq) as they come, without acks or requests', async () => {
    const server = startMockServer({ auth: (peer) => peer.send({ type: 'auth_success', message: 'ok', userId: 'u1' }) })
    const { log, client } = await connected(createClient(server))
    const article = { type: 'notification', title: 'hi', body: 'there', timestamp: '2024-01-01T00:00:00.000Z' }
    server.peer.send(article)
    server.peer.send(article)
    // Each delivered, with an id made from its frame: the same text again (two sends in one ms) gets one '+' more.
    const id = JSON.stringify({ title: 'hi', body: 'there', timestamp: '2024-01-01T00:00:00.000Z' })
    expect(log.notifications).toEqual([
      { id, seq: 0, read: false, priority: 'medium', title: 'hi', body: 'there', timestamp: '2024-01-01T00:00:00.000Z' },
      { id: `${id}+`, seq: 0, read: false, priority: 'medium', title: 'hi', body: 'there', timestamp: '2024-01-01T00:00:00.000Z' },
    ])
    await tick(60_000)
    expect(server.sent('ack')).toEqual([])
    expect(server.sent('ping')).toEqual([])
    await expect(client.history()).rejects.toBeInstanceOf(RequestError)
  })

  // The article's server sends no id and stamps each send in ms: the same text with another notification between
  // (one ms, a burst) is another notification, which belfry/react's list (each id once) and belfry/desktop's tags
  // must tell apart from the first. Every tab gets the same frames in the same order, so every tab makes the same ids.
  it('gives an article-protocol server’s notification an id no earlier one got: X, Y, X in one ms → X, Y, X+, the same in every tab', async () => {
    const server = startMockServer({ auth: (peer) => peer.send({ type: 'auth_success', message: 'ok', userId: 'u1' }) })
    const tabs = [await connected(createClient(server)), await connected(createClient(server))]
    const x = { title: 'New message', body: 'You have a new message', timestamp: '2024-01-01T00:00:00.000Z' }
    const y = { title: 'New follower', body: 'Ann follows you', timestamp: '2024-01-01T00:00:00.000Z' }
    for (const peer of server.peers) for (const n of [x, y, x]) peer.send({ type: 'notification', ...n })
    const [X, Y] = [JSON.stringify(x), JSON.stringify(y)]
    for (const { log } of tabs) expect(log.notifications.map((n) => n.id)).toEqual([X, Y, `${X}+`])
  })

  it("gives the same text again as many '+' as make its id new: X, X, X, Y, X in one ms → X, X+, X++, Y, X+++", async () => {
    const server = startMockServer({ auth: (peer) => peer.send({ type: 'auth_success', message: 'ok', userId: 'u1' }) })
    const { log } = await connected(createClient(server))
    const x = { title: 'New message', body: 'You have a new message', timestamp: '2024-01-01T00:00:00.000Z' }
    const y = { title: 'New follower', body: 'Ann follows you', timestamp: '2024-01-01T00:00:00.000Z' }
    for (const n of [x, x, x, y, x]) server.peer.send({ type: 'notification', ...n })
    const [X, Y] = [JSON.stringify(x), JSON.stringify(y)]
    expect(log.notifications.map((n) => n.id)).toEqual([X, `${X}+`, `${X}++`, Y, `${X}+++`])
  })
})

/** localStorage as two solo clients (two tabs, or two clients in one page) of one user share it. */
function sharedStorage(): CursorStorage & { map: Map<string, string> } {
  const map = new Map<string, string>()
  return { map, getItem: (k) => map.get(k) ?? null, setItem: (k, v) => void map.set(k, v) }
}

describe('two clients of one user sharing storage', () => {
  // Regression: since() took max(own cursor, stored) on every connect, so a client that fell behind skipped what the other got.
  it('a client that fell behind resumes from its own cursor, not from the other client’s (no notification lost)', async () => {
    const storage = sharedStorage()
    const server = startMockServer({ auth: { seq: 0 } })
    const a = await connected(createClient(server, { storage }))
    const b = await connected(createClient(server, { storage }))
    const [peerA, peerB] = server.peers
    peerA!.close(1006) // A's socket drops; B stays online
    await tick()
    for (const seq of [1, 2, 3]) peerB!.send(note(seq))
    await tick()
    expect(b.log.notifications.map((n) => n.seq)).toEqual([1, 2, 3])
    await tick(1000) // A retries
    expect(a.client.state).toBe('online')
    const resumeA = server.peer.frames.find((f) => f.type === 'auth')
    // A was handed nothing: it must resume from 0, or the server never sends it 1..3.
    expect(resumeA?.since).toBe(0)
  })

  // Regression: every delivery wrote its seq to storage, so a lagging client moved the stored cursor back.
  it('a client that lags does not move the stored cursor back (a reload then gets again what it got)', async () => {
    const storage = sharedStorage()
    const server = startMockServer({ auth: { seq: 0 } })
    const a = await connected(createClient(server, { storage }))
    const b = await connected(createClient(server, { storage }))
    const [peerA, peerB] = server.peers
    for (const seq of [1, 2, 3, 4, 5]) peerB!.send(note(seq))
    await tick()
    peerA!.send(note(1)) // A is a step behind B
    await tick()
    expect([a.log.notifications.length, b.log.notifications.length]).toEqual([1, 5])
    // B (and a reload of either tab, which resumes from storage) has seen 5: writing A's 1 over it makes a reload get 2..5 again.
    expect(storage.map.get('belfry:cursor:u1')).toBe('5')
  })
})

describe('acks', () => {
  it('batches the notifications of one ackDelay into one cumulative ack', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server, { ackDelay: 1000 }))
    server.peer.send(note(1))
    await tick(100)
    server.peer.send(note(2))
    server.peer.send(note(3))
    await vi.advanceTimersByTimeAsync(1000 - 100 - 10)
    expect(server.sent('ack')).toEqual([])
    await tick()
    expect(server.sent('ack')).toEqual([{ type: 'ack', seq: 3 }])
    await tick(5000)
    expect(server.sent('ack')).toHaveLength(1)

    server.peer.send(note(4))
    await tick(1000 + 10)
    expect(server.sent('ack')).toEqual([
      { type: 'ack', seq: 3 },
      { type: 'ack', seq: 4 },
    ])
    expect(client.state).toBe('online')
  })

  it('does not ack duplicates', async () => {
    const server = startMockServer()
    await connected(createClient(server, { ackDelay: 1000 }))
    server.peer.send(note(1))
    await tick(1000 + 10)
    server.peer.send(note(1))
    await tick(5000)
    expect(server.sent('ack')).toEqual([{ type: 'ack', seq: 1 }])
  })

  it('close() sends the pending ack first', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server, { ackDelay: 1000 }))
    server.peer.send(note(1))
    server.peer.send(note(2))
    client.close()
    await tick()
    expect(server.sent('ack')).toEqual([{ type: 'ack', seq: 2 }])
  })

  // Regression: close() flushed the ack but left its batching timer running ("close() removes all timers").
  it('close() with an ack pending leaves no timer behind', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server, { ackDelay: 1000 }))
    server.peer.send(note(1))
    client.close()
    await tick()
    expect(vi.getTimerCount()).toBe(0)
  })

  // Regression: a drop within ackDelay cleared the ack timer and nothing re-armed it after the next auth;
  // `since` is no ack on the server, so the user's acknowledged cursor lagged behind what the app had.
  it('acks what was delivered just before a drop, after the next auth', async () => {
    const server = startMockServer({ auth: { seq: 1 } }) // seq 1 is in the inbox: a replay
    const { client } = await connected(createClient(server, { ackDelay: 1000, backoff: () => 100 }))
    server.peer.send(note(1))
    server.peer.close(1006)
    await tick(100 + 20)
    expect(client.state).toBe('online')
    await tick(1000 + 10)
    expect(server.sent('ack')).toEqual([{ type: 'ack', seq: 1 }])
  })

  /** A storage that outlives the page, as localStorage does (not `volatile`). */
  const lasting = (): CursorStorage => ({ ...memoryStorage(), volatile: false })

  it('sends no timed ack to a server that acks by its heartbeat (pingAcks), across a drop too; close() still acks', async () => {
    const server = startMockServer({ auth: { seq: 3, pingAcks: true } })
    const { client } = await connected(createClient(server, { ackDelay: 1000, backoff: () => 100, storage: lasting() }))
    server.peer.send(note(1))
    server.peer.send(note(2))
    await tick(5000)
    server.peer.close(1006)
    await tick(100 + 20)
    expect(client.state).toBe('online')
    server.peer.send(note(3))
    await tick(5000)
    expect(server.sent('ack')).toEqual([])
    client.close()
    await tick()
    expect(server.sent('ack')).toEqual([{ type: 'ack', seq: 3 }])
  })

  it('acks by timer again when the server it reconnects to does not say pingAcks (an older one)', async () => {
    let pingAcks = true
    const server = startMockServer({ auth: (peer) => peer.authSuccess({ seq: 2, pingAcks }) }) // seqs 1 and 2 are in the inbox
    const { client } = await connected(createClient(server, { ackDelay: 1000, backoff: () => 100, storage: lasting() }))
    server.peer.send(note(1))
    await tick(5000)
    expect(server.sent('ack')).toEqual([])
    pingAcks = false
    server.peer.close(1006)
    await tick(100 + 20)
    expect(client.state).toBe('online')
    await tick(1000 + 10) // delivered before the drop: acked after the next auth
    server.peer.send(note(2))
    await tick(1000 + 10)
    expect(server.sent('ack')).toEqual([
      { type: 'ack', seq: 1 },
      { type: 'ack', seq: 2 },
    ])
  })

  it('with a volatile storage (memoryStorage: Node, storage: false) acks by timer even to a pingAcks server', async () => {
    // The next page or process starts without a cursor, from the acknowledged one: it must not lag a heartbeat.
    const server = startMockServer({ auth: { seq: 2, pingAcks: true } })
    await connected(createClient(server, { ackDelay: 1000 })) // storage: false
    server.peer.send(note(1))
    server.peer.send(note(2))
    await tick(1000 + 10)
    expect(server.sent('ack')).toEqual([{ type: 'ack', seq: 2 }])
  })

  /**
   * localStorage that reads but cannot write: Safari's private mode (setItem throws QuotaExceededError
   * while getItem works), or an origin whose quota is full. defaultStorage() takes it (getItem works), and
   * it is not `volatile`; yet the cursor does not outlive the page, as a volatile one's does not: the next
   * page starts from the server's acknowledged cursor, which a pingAcks server's heartbeat leaves up to
   * 25 s behind (README, "Delivery, exactly once").
   */
  const unwritable = () => {
    const quota = () => {
      throw Object.assign(new Error('The quota has been exceeded.'), { name: 'QuotaExceededError' })
    }
    return { getItem: () => null, setItem: quota, removeItem: quota, clear: () => {}, key: () => null, length: 0 }
  }

  it('with a localStorage that cannot be written (private mode, quota full) acks by timer even to a pingAcks server', async () => {
    vi.stubGlobal('localStorage', unwritable())
    const server = startMockServer({ auth: { seq: 2, pingAcks: true } })
    // storage: undefined → defaultStorage(), which takes the global localStorage (getItem works).
    await connected(createClient(server, { storage: undefined, ackDelay: 1000 }))
    server.peer.send(note(1))
    server.peer.send(note(2))
    await tick(1000 + 10)
    expect(server.sent('ack')).toEqual([{ type: 'ack', seq: 2 }])
  })

  it('with a storage passed in that cannot be written acks by timer even to a pingAcks server', async () => {
    const server = startMockServer({ auth: { seq: 2, pingAcks: true } })
    await connected(createClient(server, { storage: unwritable(), ackDelay: 1000 }))
    server.peer.send(note(1))
    server.peer.send(note(2))
    await tick(1000 + 10)
    expect(server.sent('ack')).toEqual([{ type: 'ack', seq: 2 }])
  })

  it('acks by timer from the first write that throws (a quota that fills up later), across a reconnect too', async () => {
    const storage = lasting()
    const server = startMockServer({ auth: { seq: 3, pingAcks: true } })
    const { client } = await connected(createClient(server, { storage, ackDelay: 1000, backoff: () => 100 }))
    server.peer.send(note(1))
    await tick(5000)
    expect(server.sent('ack')).toEqual([]) // written: the heartbeat acks it
    storage.setItem = unwritable().setItem
    server.peer.send(note(2))
    await tick(1000 + 10)
    expect(server.sent('ack')).toEqual([{ type: 'ack', seq: 2 }])
    server.peer.close(1006)
    await tick(100 + 20)
    expect(client.state).toBe('online')
    server.peer.send(note(3))
    await tick(1000 + 10)
    expect(server.sent('ack')).toEqual([
      { type: 'ack', seq: 2 },
      { type: 'ack', seq: 3 },
    ])
  })
})

describe('unread count', () => {
  it('starts from auth_success and counts new unread notifications, not replayed or read ones', async () => {
    const storage = memoryStorage()
    storage.setItem(KEY, '8')
    const server = startMockServer({ auth: { seq: 10, unreadCount: 4 } })
    const { client, log } = await connected(createClient(server, { storage }))
    expect(client.unreadCount).toBe(4)
    expect(log.unread).toEqual([4])

    server.peer.send(note(9)) // replayed: already counted by the server
    server.peer.send(note(10))
    expect(client.unreadCount).toBe(4)
    server.peer.send(note(11)) // new
    expect(client.unreadCount).toBe(5)
    server.peer.send(note(12, { read: true })) // new but read elsewhere
    server.peer.send(note(11)) // duplicate
    expect(client.unreadCount).toBe(5)
    expect(log.unread).toEqual([4, 5])
  })

  it('takes read frames pushed by the server: unreadCount, read and unread events', async () => {
    const server = startMockServer({ auth: { seq: 3, unreadCount: 3 } })
    const { client, log } = await connected(createClient(server))
    server.peer.send({ type: 'read', ids: ['n1', 'n2'], all: false, seq: 3, unreadCount: 1 })
    expect(client.unreadCount).toBe(1)
    expect(log.reads).toHaveLength(1)
    expect(log.reads[0]).toMatchObject({ ids: ['n1', 'n2'], all: false, seq: 3, unreadCount: 1 })
    server.peer.send({ type: 'read', ids: [], all: true, seq: 3, unreadCount: 0 })
    expect(client.unreadCount).toBe(0)
    expect(log.reads).toHaveLength(2)
    expect(log.reads[1]).toMatchObject({ ids: [], all: true, seq: 3, unreadCount: 0 })
    expect(log.unread).toEqual([3, 1, 0])
  })

  it('takes a new count from the next auth_success', async () => {
    let unreadCount = 2
    const server = startMockServer({ auth: (peer) => peer.authSuccess({ seq: 5, unreadCount }) })
    const { client, log } = await connected(createClient(server, { backoff: () => 100, token: () => jwt('u1') }))
    unreadCount = 7
    server.peer.close(1006)
    await tick(100 + 20)
    expect(client.unreadCount).toBe(7)
    expect(log.unread).toEqual([2, 7])
  })

  // Regression: the last user's count stayed (in unreadCount, in the app's badge) until the new user's auth_success.
  it('goes back to 0, with an `unread` event, as soon as the token names another user, before that user is online', async () => {
    let user = 'u1'
    // The new user's auth is answered only when the test says.
    const server = startMockServer({ auth: (peer, f) => f.token === jwt('u1') && peer.authSuccess({ seq: 50, unreadCount: 4 }) })
    const { client, log } = await connected(createClient(server, { token: () => jwt(user), backoff: () => 100 }))
    user = 'u2'
    server.peer.close(1006)
    await tick(100 + 20)
    // The token was read (the auth frame went out with u2's): u1's 4 is no count of u2's.
    expect(client.state).toBe('authenticating')
    expect(client.unreadCount).toBe(0)
    expect(log.unread).toEqual([4, 0])
    server.peer.authSuccess({ seq: 7, unreadCount: 1 })
    await tick()
    expect(client.unreadCount).toBe(1)
    expect(log.unread).toEqual([4, 0, 1])
  })

  it('of a belfry/shared follower goes back to 0 as its token names another user, before that user’s socket is online', async () => {
    // u2's auth is never answered: the test looks in between.
    const server = startMockServer({ auth: (peer, f) => f.userId === 'u1' && peer.authSuccess({ seq: 50, unreadCount: 4 }) })
    const locks = new FakeLocks()
    const leader = createClient(server, { connection: tabConnection(locks, 'a') })
    leader.client.connect()
    await tick(100)
    let user = 'u1'
    const follower = createClient(server, { token: () => jwt(user), connection: tabConnection(locks, 'b') })
    follower.client.connect()
    await tick(100)
    expect([follower.client.mode, follower.client.state, follower.client.unreadCount]).toEqual(['follower', 'online', 4])
    // The leader's socket drops: the follower's token, asked who its user is, names u2, and the tab leads u2's group.
    user = 'u2'
    server.peer.close(1012)
    await tick(100)
    expect([follower.client.mode, follower.client.state, follower.client.unreadCount]).toEqual(['leader', 'authenticating', 0])
    expect(follower.log.unread).toEqual([4, 0])
    expect(leader.client.unreadCount).toBe(4)
  })

  // Regression: only seqs above the latest seq at auth were taken as seen, so one a markAllRead covered, arriving after its reply, counted as unread.
  it('a notification at or below a markAllRead’s seq that arrives after its reply does not count as unread', async () => {
    // The server inserted 6, then ran markAll (which covers 6: seq 6, unreadCount 0) and replied; the
    // fan-out of 6 (another process, through the broker) reaches the socket after the reply.
    const server = startMockServer({ auth: { seq: 5, unreadCount: 0 } })
    const { client } = await connected(createClient(server))
    const all = client.markAllRead()
    await tick()
    const request = server.sent('mark_read')[0]!
    server.peer.send({ type: 'read', ids: [], all: true, seq: 6, unreadCount: 0, requestId: request.requestId })
    await all
    server.peer.send(note(6))
    await tick()
    expect(client.unreadCount).toBe(0)
  })

  // Regression: only a `read {all}` frame's seq was taken as counted, so a notification marked read on
  // another process before its own event got here came `read: false` after a read frame covering it, and counted.
  it('a notification at or below any read frame’s seq that arrives after it does not count as unread', async () => {
    // Another process published 6 and another marked it read (seq 6, unreadCount 1: 5 is still
    // unread); the read change reaches the socket before the notification's event.
    const server = startMockServer({ auth: { seq: 5, unreadCount: 1 } })
    const { client, log } = await connected(createClient(server))
    server.peer.send({ type: 'read', ids: ['n6'], all: false, seq: 6, unreadCount: 1 })
    server.peer.send(note(6))
    server.peer.send(note(7)) // newer than the frame's seq: new and unread
    await tick()
    expect(client.unreadCount).toBe(2)
    expect(log.unread).toEqual([1, 2])
  })
})

describe('the delivery module alone', () => {
  const setup = (storage = memoryStorage(), canSend = true) => {
    const acks: number[] = []
    const unread: number[] = []
    const d = createDelivery(
      storage,
      1000,
      (f) => canSend && acks.push(f.seq) > 0,
      (count) => unread.push(count),
    )
    return { d, acks, unread, storage }
  }
  const n = (seq: number, read = false) => ({ ...note(seq), read }) as unknown as Notification

  it('keeps one cursor per user and resumes each from storage', () => {
    const { d, storage } = setup()
    storage.setItem('belfry:cursor:bob', '4')
    expect(d.since('ann')).toBe(0)
    expect(d.accept(n(1))).toBe(true)
    expect(d.accept(n(1))).toBe(false)
    expect(d.since('bob')).toBe(4)
    expect(d.accept(n(3))).toBe(false)
    expect(d.since('ann')).toBe(1)
    expect(storage.getItem('belfry:cursor:ann')).toBe('1')
  })

  it('starts another user from 0 unread, as before the first auth; the same user keeps its count', () => {
    const { d, unread } = setup()
    d.since('ann')
    d.online({ type: 'auth_success', message: '', userId: 'ann', seq: 2, unreadCount: 2 })
    d.since('ann')
    expect(d.unread).toBe(2)
    d.since('bob')
    expect(d.unread).toBe(0)
    expect(unread).toEqual([2, 0])
  })

  it('counts as unread only what is newer than the latest seq at auth and not read already', () => {
    const { d, unread } = setup()
    d.since('ann')
    d.online({ type: 'auth_success', message: '', userId: 'ann', seq: 2, unreadCount: 2 })
    d.accept(n(1)) // replayed: already counted by the server
    d.accept(n(2))
    d.accept(n(3, true))
    d.accept(n(4))
    expect(unread).toEqual([2, 3])
    expect(d.unread).toBe(3)
  })

  it('acks once per ackDelay, cumulatively, and again only past what was acked', () => {
    vi.useFakeTimers()
    const { d, acks } = setup()
    d.since('ann')
    d.accept(n(1))
    d.accept(n(2))
    vi.advanceTimersByTime(999)
    expect(acks).toEqual([])
    vi.advanceTimersByTime(1)
    expect(acks).toEqual([2])
    d.ack()
    expect(acks).toEqual([2])
  })

  it('keeps an ack that could not be sent for the next auth', () => {
    vi.useFakeTimers()
    const storage = memoryStorage()
    const offline = setup(storage, false)
    offline.d.since('ann')
    offline.d.accept(n(5))
    vi.advanceTimersByTime(1000)
    expect(offline.acks).toEqual([])
    // A new session of the same user: the stored cursor was never acked.
    const next = setup(storage)
    expect(next.d.since('ann')).toBe(5)
    next.d.online({ type: 'auth_success', message: '', userId: 'ann', seq: 5, unreadCount: 0 })
    vi.advanceTimersByTime(1000)
    expect(next.acks).toEqual([5])
  })
})

// README, "The client": "A client that has not been online yet knows of nothing, nor does one whose token names
// another user until it is online for that user: its call marks all there is when it goes out." The `unread` event
// that tells the switch (count back to 0) is the first moment an app hears of the new user; a badge or an open inbox
// panel that marks all read on it must not carry the last user's seq into the new user's inbox.
describe('a user switch told on `unread`', () => {
  it('a markAllRead made in the `unread` handler that tells the switch (count 0) carries no bound of the last user', async () => {
    let user = 'u1'
    // u1's auth says latest seq 50; u2's is answered only when the test says.
    const server = startMockServer({ auth: (peer, f) => f.token === jwt('u1') && peer.authSuccess({ seq: 50, unreadCount: 4 }) })
    const { client } = await connected(createClient(server, { token: () => jwt(user), backoff: () => 100 }))
    expect(client.unreadCount).toBe(4)
    let marked: Promise<ReadEvent> | undefined
    client.on('unread', ({ count }) => {
      if (count === 0 && !marked) {
        marked = client.markAllRead()
        marked.catch(() => {})
      }
    })
    user = 'u2'
    server.peer.close(1006)
    await tick(100 + 20)
    expect(client.state).toBe('authenticating')
    expect(marked).toBeDefined()
    server.peer.authSuccess({ seq: 7, unreadCount: 1 })
    await tick()
    expect(client.state).toBe('online')
    // u1's 50 is no seq of u2's inbox: the call marks all there is, as one made a moment later does.
    expect(server.sent('mark_read').map(({ requestId: _, ...f }) => f)).toEqual([{ type: 'mark_read', all: true }])
  })
})
