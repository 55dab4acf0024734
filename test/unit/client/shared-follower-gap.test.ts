import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { memoryStorage } from '../../../src/index.js'
import { FakeChannel, FakeLocks, tabConnection } from '../../helpers/locks.js'
import { cleanup, createClient, type Frame, type MockServer, note, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
  FakeChannel.reset()
})
afterEach(cleanup)

/**
 * Answers every history request not yet answered with `reply(request)`; by default nothing past the follower's cursor:
 * no items, no `next` (a range retention removed, or seqs that never existed).
 */
function answerHistory(server: MockServer, answered: Set<unknown>, reply: (f: Frame) => object = () => ({ items: [] })): void {
  for (const p of server.peers)
    for (const f of p.frames)
      if (f.type === 'history' && !answered.has(f)) {
        answered.add(f)
        p.send({ type: 'history', ...reply(f), requestId: f.requestId })
      }
}

/**
 * A leader (tab a) on `server`, then a follower (tab b) whose stored cursor is `cursor`; history requests answered
 * as they come, with `reply` if given (see {@link answerHistory}).
 */
async function leaderAndFollower(server: MockServer, cursor: number, reply?: (f: Frame) => object) {
  const locks = new FakeLocks()
  const opts = (tab: string) => ({
    connection: tabConnection(locks, tab),
  })
  const leader = createClient(server, opts('a'))
  leader.client.connect()
  await tick(100)
  expect(leader.client.mode).toBe('leader')
  const storage = memoryStorage()
  storage.setItem('belfry:cursor:u1', `${cursor}`)
  const follower = createClient(server, { ...opts('b'), storage })
  follower.client.connect()
  const answered = new Set<unknown>()
  const run = async (rounds: number) => {
    for (let i = 0; i < rounds; i++) {
      await tick(50)
      answerHistory(server, answered, reply)
    }
  }
  await run(10)
  expect(follower.client.mode).toBe('follower')
  return { leader, follower, run }
}

describe('belfry/shared: a follower far behind', () => {
  // Each history request is on the user's frame budget (20/s, burst 60): paging 100 seqs at a time through a range
  // that holds nothing (~1,000 requests here, one a round trip) would get the leader's socket closed 4029.
  it('starts from the inbox floor (auth_success.oldestSeq) when its cursor is below it, and says expired', async () => {
    const server = startMockServer({
      auth: (peer) => peer.send({ type: 'auth_success', message: 'ok', userId: 'u1', seq: 100_000, unreadCount: 0, oldestSeq: 99_990 }),
    })
    const { follower, run } = await leaderAndFollower(server, 5) // a tab restored with a cursor from long ago
    await run(90)
    expect(follower.log.statuses.find((s) => s.to === 'online')).toMatchObject({ expired: true })
    // One page covers what exists, 99,991 to 100,000: nothing of the removed range is asked for.
    expect(server.sent('history').map((f) => [f.before, f.limit])).toEqual([[100_001, 10]])
  })

  it('takes a seq that jumps far ahead after one page that finds nothing, asking for the newest that exist', async () => {
    const server = startMockServer({ auth: { seq: 10 } })
    const { follower, run } = await leaderAndFollower(server, 10)
    server.peer.send(note(100_000)) // a hostile server, or another database
    await run(90)
    // The next 100 seqs (nothing there), then the newest 100 that exist below the jump: not ~1,000 pages of 100 seqs.
    expect(server.sent('history').map((f) => [f.before, f.limit])).toEqual([
      [111, 100],
      [100_001, 100],
    ])
    expect(follower.log.notifications.map((n) => n.seq)).toEqual([100_000])
  })
})

describe('belfry/shared: a follower whose server starts over on another database', () => {
  it('drops what it held for a gap of the old numbering: the new numbering’s seqs go to the app, not the old ones', async () => {
    let seq = 5
    const server = startMockServer({ auth: (peer) => peer.authSuccess({ seq }) })
    const { follower } = await leaderAndFollower(server, 5)
    // Seq 8 of the old database comes past a gap (6 and 7 lost): the follower holds it and asks for 6 and 7, which never come.
    server.peer.send(note(8))
    await tick(100)
    expect(server.sent('history').map((f) => [f.before, f.limit])).toEqual([[9, 3]])
    // The server starts over on another database, whose latest seq is 2: its 3 to 8 are other notifications.
    seq = 2
    server.peer.close(1012)
    await tick(1000)
    expect(follower.client.state).toBe('online')
    // The new database's 9 comes live (3 to 8 missed): the follower fetches them, and hands over 3 to 9 of the new numbering.
    const fresh = (n: number) => note(n, { id: `new${n}`, title: `new ${n}` })
    server.peer.send(fresh(9))
    await tick(100)
    const ask = server.sent('history').at(-1)!
    expect([ask.before, ask.limit]).toEqual([10, 7])
    server.peer.send({ type: 'history', items: [8, 7, 6, 5, 4, 3].map(fresh), requestId: ask.requestId })
    await tick(100)
    expect(follower.log.notifications.map((n) => n.id)).toEqual(['new3', 'new4', 'new5', 'new6', 'new7', 'new8', 'new9'])
  })
})

describe('belfry/shared: a follower’s unread count and the leader’s beats', () => {
  it('keeps a follower’s own mark_read reply that comes after beats with the older count: the beats change nothing', async () => {
    const server = startMockServer({ auth: { seq: 5, unreadCount: 5 } })
    const { leader, follower, run } = await leaderAndFollower(server, 5)
    expect(follower.client.unreadCount).toBe(5)
    const done = follower.client.markAllRead()
    await run(2)
    const ask = server.sent('mark_read').at(-1)!
    // The reply waits: beats that say 5 unread go by meanwhile (the leader's every second).
    await run(60)
    expect(follower.client.unreadCount).toBe(5)
    server.peer.send({ type: 'read', ids: [], all: true, seq: 5, unreadCount: 0, requestId: ask.requestId })
    await run(60)
    await expect(done).resolves.toMatchObject({ all: true, unreadCount: 0 })
    for (const t of [leader, follower]) {
      expect(t.log.unread).toEqual([5, 0])
      expect(t.log.reads).toEqual([{ ids: [], all: true, seq: 5, unreadCount: 0 }])
    }
  })

  it('keeps a read change relayed after a newer notification: the beats change nothing', async () => {
    const server = startMockServer({ auth: { seq: 5, unreadCount: 5 } })
    const { leader, follower, run } = await leaderAndFollower(server, 5)
    // A change told through another process's broker, whose seq (when that process read the store) is older than
    // the notification relayed before it: its count covers up to 5 only.
    server.peer.send(note(6))
    server.peer.send({ type: 'read', ids: ['n1'], all: false, seq: 5, unreadCount: 3 })
    await run(60)
    for (const t of [leader, follower]) {
      expect(t.log.unread).toEqual([5, 6, 3])
      expect(t.log.reads).toHaveLength(1)
    }
  })
})

describe('belfry/shared: a follower’s markAllRead', () => {
  // The user clicked in the follower's tab: what that tab could show is what it had, not what the leader had.
  it('is bounded by what the follower knew when called, not by the leader’s latest nor by what came before it was sent', async () => {
    let latest = 5
    const server = startMockServer({ auth: (peer) => peer.authSuccess({ seq: latest, unreadCount: 5 }) })
    const { leader, follower, run } = await leaderAndFollower(server, 5)
    const marks = () => server.sent('mark_read').map(({ requestId: _, ...f }) => f)
    // The leader has 6; the follower is called before the relay of it reaches its tab.
    const off = leader.client.on('notification', () => void follower.client.markAllRead().catch(() => {}))
    server.peer.send(note(6))
    await run(2)
    off()
    expect(follower.log.notifications.map((n) => n.seq)).toEqual([6])
    expect(marks()).toEqual([{ type: 'mark_read', all: true, seq: 5 }])

    // The leader's socket drops; the follower is called while it waits, and the leader is back with 9 as the latest.
    server.peer.close(1012)
    await tick(20)
    expect(follower.client.state).toBe('reconnecting')
    const waiting = follower.client.markAllRead()
    latest = 9
    await run(20)
    expect(follower.client.state).toBe('online')
    expect(marks().at(-1)).toEqual({ type: 'mark_read', all: true, seq: 6 })
    // The reply, to the follower; the frame at the latest, to every tab: both counts are the server's.
    const ask = server.sent('mark_read').at(-1)!
    server.peer.send({ type: 'read', ids: [], all: true, seq: 6, unreadCount: 3, requestId: ask.requestId })
    server.peer.send({ type: 'read', ids: [], all: false, seq: 9, unreadCount: 3 })
    await run(4)
    await expect(waiting).resolves.toEqual({ ids: [], all: true, seq: 6, unreadCount: 3 })
    for (const t of [leader, follower]) {
      expect(t.client.unreadCount).toBe(3)
      expect(t.log.reads.slice(-2)).toEqual([
        { ids: [], all: true, seq: 6, unreadCount: 3 },
        { ids: [], all: false, seq: 9, unreadCount: 3 },
      ])
    }
  })
})

// Regression: a broken server's `next` not below the `before` asked for made the follower ask for that page at every
// reply, for ever: one request a round trip on the user's frame budget, and 4029 for every tab.
describe('belfry/shared: a follower given a history page whose `next` is not below the page asked for', () => {
  it('does not ask for that page again and again', async () => {
    const server = startMockServer({ auth: { seq: 10 } })
    // Behind: it fills 6..10 from history.
    const { run } = await leaderAndFollower(server, 5, (f) => ({ items: [], next: f.before }))
    await run(30)
    const asked = server.sent('history').map((f) => [f.before, f.limit])
    expect(asked[0]).toEqual([11, 5])
    expect(asked.length).toBeLessThanOrEqual(3) // it was 40 in these 2 s
  })
})

// Regression: a `next` given as a string ("8") was sent as the next page's `before`, whose answer never matched it
// (+'8' !== '8'): no page was asked for again, and what the follower held behind the gap never reached the app.
describe('belfry/shared: a follower given a history page whose `next` is a numeric string', () => {
  it.each([
    ['8', false],
    ['"8"', true],
  ])('next %s: the follower still fills the gap, 6 to 10', async (_, asString) => {
    const server = startMockServer({ auth: { seq: 10 } })
    // The inbox holds 1..10; a page is cut short at 3 items (by bytes, say), and says where the rest starts.
    const reply = (f: Frame) => {
      const before = Number(f.before)
      const seqs = [before - 1, before - 2, before - 3].filter((s) => s >= 1)
      const items = seqs.map((s) => ({ ...note(s), type: undefined }))
      const low = seqs.at(-1)!
      return { items, ...(low > 1 && { next: asString ? String(low) : low }) }
    }
    const { follower, run } = await leaderAndFollower(server, 5, reply)
    await run(30)
    expect(server.sent('history').every((f) => Number.isSafeInteger(f.before))).toBe(true)
    expect(follower.log.notifications.map((n) => n.seq)).toEqual([6, 7, 8, 9, 10])
  })
})
