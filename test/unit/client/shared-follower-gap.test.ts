import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { memoryStorage } from '../../../src/index.js'
import { sharedConnection } from '../../../src/shared/index.js'
import { FakeChannel, FakeLocks } from '../../helpers/locks.js'
import { cleanup, createClient, type MockServer, note, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
  FakeChannel.reset()
})
afterEach(cleanup)

/** Answers every history request not yet answered with nothing past the follower's cursor: no items, no `next` (a range retention removed, or seqs that never existed). */
function answerHistory(server: MockServer, answered: Set<unknown>): void {
  for (const p of server.peers)
    for (const f of p.frames)
      if (f.type === 'history' && !answered.has(f)) {
        answered.add(f)
        p.send({ type: 'history', items: [], requestId: f.requestId })
      }
}

/** A leader (tab a) on `server`, then a follower (tab b) whose stored cursor is `cursor`; history requests answered as they come. */
async function leaderAndFollower(server: MockServer, cursor: number) {
  const locks = new FakeLocks()
  const opts = (tab: string) => ({
    connection: sharedConnection({ locks: locks.forTab(tab), BroadcastChannel: FakeChannel as unknown as typeof BroadcastChannel }),
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
      answerHistory(server, answered)
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
