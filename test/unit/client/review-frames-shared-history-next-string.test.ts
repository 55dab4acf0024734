import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { memoryStorage } from '../../../src/index.js'
import { FakeChannel, FakeLocks, tabConnection } from '../../helpers/locks.js'
import { cleanup, createClient, type Frame, type MockServer, note, startMockServer, tick } from '../../helpers/mock-server.js'

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

describe('belfry/shared follower: a history page whose `next` is a numeric string (a bigint as a store hands it out)', () => {
  for (const asString of [false, true]) {
    it(`next ${asString ? '"8"' : '8'}: the follower still fills the gap, 6 to 10`, async () => {
      const server = startMockServer({ auth: { seq: 10 } })
      const locks = new FakeLocks()
      const leader = createClient(server, { connection: tabConnection(locks, 'a') })
      leader.client.connect()
      await tick(100)
      expect(leader.client.mode).toBe('leader')
      const storage = memoryStorage()
      storage.setItem('belfry:cursor:u1', '5')
      const follower = createClient(server, { connection: tabConnection(locks, 'b'), storage })
      follower.client.connect()
      const answered = new Set<unknown>()
      // The inbox holds 1..10; a page is cut short at 3 items (by bytes, say), and says where the rest starts.
      const reply = (f: Frame) => {
        const before = Number(f.before)
        const items = [before - 1, before - 2, before - 3].filter((s) => s >= 1).map((s) => ({ ...note(s), type: undefined }))
        const low = items.at(-1)!.seq
        return { items, ...(low > 1 && { next: asString ? String(low) : low }) }
      }
      for (let i = 0; i < 40; i++) {
        await tick(50)
        answerHistory(server, answered, reply)
      }
      expect(follower.client.mode).toBe('follower')
      // Today, with "8": fetching becomes "8", the reply's requestId '8' is never matched (+'8' !== '8'), and no
      // page is ever asked for again: 6..10 are held for good (and the second request's `before` was the string "8").
      expect(server.sent('history').every((f) => Number.isSafeInteger(f.before))).toBe(true)
      expect(follower.log.notifications.map((n) => n.seq)).toEqual([6, 7, 8, 9, 10])
    })
  }
})
