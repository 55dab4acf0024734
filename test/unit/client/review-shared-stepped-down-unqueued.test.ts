import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { sharedConnection } from '../../../src/shared/index.js'
import { FakeChannel, FakeLocks } from '../../helpers/locks.js'
import { cleanup, createClient, jwt, startMockServer, tick } from '../../helpers/mock-server.js'

/**
 * A leader whose token provider failed steps down and asks for the lock again
 * only when its retry comes (setTimeout(queue, retryIn)). Meanwhile it follows
 * the tab that took over, and says `online` with it; but it is queued for
 * nothing. When that leader's tab closes, "its lock passes to the next tab"
 * (the module's doc): there is none, so the tab says `online` with no socket
 * anywhere until its old retry fires (up to the backoff's max, 30 s).
 */
beforeEach(() => {
  vi.useFakeTimers()
  FakeChannel.reset()
})
afterEach(cleanup)

const shared = (locks: FakeLocks, tab: string) =>
  sharedConnection({ locks: locks.forTab(tab), BroadcastChannel: FakeChannel as unknown as typeof BroadcastChannel })

describe('belfry/shared: a tab that stepped down on a failing token provider, then followed', () => {
  it('takes the lock when the leader’s tab closes, not only when its old retry fires', async () => {
    const server = startMockServer()
    const locks = new FakeLocks()
    let calls = 0
    const a = createClient(server, {
      // The join's call works, its socket's fails once (a session being renewed), and every later one works.
      token: () => {
        if (++calls === 2) throw new Error('session being renewed')
        return jwt('u1')
      },
      // The backoff after a few failures in a row (the default reaches 30 s).
      backoff: () => 20_000,
      connection: shared(locks, 'a'),
    })
    a.client.on('error', () => {})
    a.client.connect()
    await tick(100)
    expect(a.log.statuses.map((s) => s.reason)).toContain('token or url failed')

    // Another tab of the user, whose provider works, takes over; tab a follows it, online.
    const b = createClient(server, { token: () => jwt('u1'), connection: shared(locks, 'b') })
    b.client.connect()
    await tick(200)
    expect([a.client.mode, a.client.state, b.client.mode, b.client.state]).toEqual(['follower', 'online', 'leader', 'online'])

    // The leading tab is closed.
    b.client.close()
    // Well within a `stale` (3 s) and two beats, a tab of the group leads again (or at least says it is not online).
    await tick(6_000)
    expect({ mode: a.client.mode, state: a.client.state, lockHolder: locks.holder('belfry:ws://belfry-1.test/ws#u1') ?? 'none' })
      .toEqual({ mode: 'leader', state: 'online', lockHolder: 'a' })
  })
})
