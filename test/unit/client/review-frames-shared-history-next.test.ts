import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { memoryStorage } from '../../../src/index.js'
import { FakeChannel, FakeLocks, tabConnection } from '../../helpers/locks.js'
import { cleanup, createClient, type Frame, type MockServer, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
  FakeChannel.reset()
})
afterEach(cleanup)

/** Answers every history request not yet answered with `reply(request)`. */
function answerHistory(server: MockServer, answered: Set<unknown>, reply: (f: Frame) => object): void {
  for (const p of server.peers)
    for (const f of p.frames)
      if (f.type === 'history' && !answered.has(f)) {
        answered.add(f)
        p.send({ type: 'history', ...reply(f), requestId: f.requestId })
      }
}

describe('belfry/shared follower: a history reply whose `next` is not below the `before` asked for', () => {
  it('does not ask for the same page again and again (each request spends the user’s frame budget: 4029)', async () => {
    const server = startMockServer({ auth: { seq: 10 } })
    const locks = new FakeLocks()
    const leader = createClient(server, { connection: tabConnection(locks, 'a') })
    leader.client.connect()
    await tick(100)
    expect(leader.client.mode).toBe('leader')
    const storage = memoryStorage()
    storage.setItem('belfry:cursor:u1', '5') // behind: it fills 6..10 from history
    const follower = createClient(server, { connection: tabConnection(locks, 'b'), storage })
    follower.client.connect()
    const answered = new Set<unknown>()
    // A buggy (or hostile) server: nothing, and `next` equal to the `before` asked for.
    for (let i = 0; i < 40; i++) {
      await tick(50)
      answerHistory(server, answered, (f) => ({ items: [], next: f.before }))
    }
    expect(follower.client.mode).toBe('follower')
    const asked = server.sent('history').map((f) => [f.before, f.limit])
    expect(asked[0]).toEqual([11, 5])
    // Today: fill(f.next) asks for [11, 5] again at every reply, one request a round trip, for ever (40 in 2 s here).
    expect(asked.length).toBeLessThanOrEqual(3)
  })
})
