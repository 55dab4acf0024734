import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { memoryStorage } from '../../../src/index.js'
import { sharedConnection } from '../../../src/shared/index.js'
import { FakeLocks } from '../../helpers/locks.js'
import { cleanup, createClient, type MockServer, startMockServer, tick } from '../../helpers/mock-server.js'

/** BroadcastChannel over fake timers: each message reaches the other channels of its name on a 0 ms timer. */
const bus = new Map<string, Set<Channel>>()
class Channel {
  onmessage: ((e: MessageEvent) => void) | null = null
  constructor(readonly name: string) {
    if (!bus.has(name)) bus.set(name, new Set())
    bus.get(name)!.add(this)
  }
  postMessage(m: unknown): void {
    for (const c of bus.get(this.name) ?? [])
      if (c !== this) setTimeout(() => c.onmessage?.({ data: structuredClone(m) } as MessageEvent), 0)
  }
  close(): void {
    bus.get(this.name)?.delete(this)
  }
}

beforeEach(() => {
  vi.useFakeTimers()
  bus.clear()
})
afterEach(cleanup)

/** Answers every history request not yet answered as belfry's server does for a range retention removed: no items, no `next`. */
function answerHistory(server: MockServer, answered: Set<unknown>): void {
  for (const p of server.peers)
    for (const f of p.frames)
      if (f.type === 'history' && !answered.has(f)) {
        answered.add(f)
        p.send({ type: 'history', items: [], requestId: f.requestId })
      }
}

describe('belfry/shared: a follower far behind the inbox floor', () => {
  // auth_success says the floor (oldestSeq): nothing at or below it exists. The follower pages 100 seqs at a time
  // from its own cursor through the removed range, one history request per round trip (~1,000 here), each on the
  // user's frame budget (20/s, burst 60: the leader's socket is closed 4029 on the way).
  it('does not page through the removed range one history request after another', async () => {
    const server = startMockServer({
      auth: (peer) => peer.send({ type: 'auth_success', message: 'ok', userId: 'u1', seq: 100_000, unreadCount: 0, oldestSeq: 99_990 }),
    })
    const locks = new FakeLocks()
    const opts = (tab: string) => ({
      connection: sharedConnection({ locks: locks.forTab(tab), BroadcastChannel: Channel as unknown as typeof BroadcastChannel }),
    })
    const leader = createClient(server, opts('a'))
    leader.client.connect()
    await tick(100)
    expect(leader.client.mode).toBe('leader')

    const storage = memoryStorage()
    storage.setItem('belfry:cursor:u1', '5') // a tab restored with a cursor from long ago
    const follower = createClient(server, { ...opts('b'), storage })
    follower.client.connect()
    const answered = new Set<unknown>()
    for (let i = 0; i < 100; i++) {
      await tick(50)
      answerHistory(server, answered)
    }
    expect(follower.client.mode).toBe('follower')
    expect(follower.log.statuses.find((s) => s.to === 'online')).toMatchObject({ expired: true })
    // One page (or two) covers what exists: 99,991 to 100,000.
    const asked = server.sent('history').map((f) => f.before)
    expect(asked.slice(0, 3)).toEqual([106, 206, 306]) // 100 seqs a page, from the cursor up
    expect(asked.length).toBeLessThanOrEqual(3)
  })
})
