import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { sharedConnection } from '../../../src/shared/index.js'
import { FakeChannel, FakeLocks } from '../../helpers/locks.js'
import { cleanup, createClient, jwt, startMockServer, tick } from '../../helpers/mock-server.js'

/**
 * Connection.close() is final: it clears every timer (as state.test.ts holds
 * the client's own to), belfry/shared's too: the retry of a leader whose token
 * provider failed, and a follower's user check's time limit (cleared as soon
 * as the provider answers).
 */
beforeEach(() => {
  vi.useFakeTimers()
  FakeChannel.reset()
})
afterEach(cleanup)

const shared = (locks: FakeLocks, tab: string) =>
  sharedConnection({ locks: locks.forTab(tab), BroadcastChannel: FakeChannel as unknown as typeof BroadcastChannel })

describe('belfry/shared: close() leaves no timer behind', () => {
  it('after its leader stepped down on a failing token provider (the retry of its lead)', async () => {
    const server = startMockServer()
    let calls = 0
    const { client, log } = createClient(server, {
      // The join's call works; the socket's fails (signed out).
      token: () => {
        if (++calls > 1) throw new Error('signed out')
        return jwt('u1')
      },
      backoff: () => 20_000,
      connection: shared(new FakeLocks(), 'a'),
    })
    client.on('error', () => {})
    client.connect()
    await tick(100)
    expect(log.statuses.map((s) => s.reason)).toContain('token or url failed')
    client.close()
    await tick()
    expect(vi.getTimerCount()).toBe(0)
  })

  it('while a follower’s user check waits for a token provider that hangs (its time limit)', async () => {
    const server = startMockServer()
    const locks = new FakeLocks()
    const leader = createClient(server, { connection: shared(locks, 'a') })
    leader.client.connect()
    await tick(100)
    let hang = false
    const follower = createClient(server, {
      token: () => (hang ? new Promise<string>(() => {}) : jwt('u1')),
      connection: shared(locks, 'b'),
    })
    follower.client.connect()
    await tick(100)
    expect([leader.client.mode, follower.client.state]).toEqual(['leader', 'online'])
    // The leader's socket drops: the follower asks its token who its user is, and the provider hangs.
    hang = true
    server.peer.close(1012)
    await tick(50)
    leader.client.close()
    follower.client.close()
    await tick()
    expect(vi.getTimerCount()).toBe(0)
  })
})
