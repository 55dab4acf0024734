import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { sharedConnection } from '../../../src/shared/index.js'
import { FakeChannel, FakeLocks } from '../../helpers/locks.js'
import { cleanup, createClient, jwt, startMockServer, tick } from '../../helpers/mock-server.js'

/**
 * close() is final and clears every timer, belfry/shared's retry of a leader
 * whose token provider failed included (shared-timers.test.ts). An app that
 * closes the client from its `status` handler on that very event (the session
 * is gone: "signed out, stop") closes it while the leader's status handler is
 * still running: leave() runs first, then the handler goes on and arms the
 * retry on a closed tab.
 */
beforeEach(() => {
  vi.useFakeTimers()
  FakeChannel.reset()
})
afterEach(cleanup)

describe('belfry/shared: close() from the status handler of a failing token provider', () => {
  it('leaves no retry timer behind', async () => {
    const server = startMockServer()
    let calls = 0
    const { client } = createClient(server, {
      // The join's call works; the socket's fails (signed out).
      token: () => {
        if (++calls > 1) throw new Error('signed out')
        return jwt('u1')
      },
      backoff: () => 20_000,
      connection: sharedConnection({
        locks: new FakeLocks().forTab('a'),
        BroadcastChannel: FakeChannel as unknown as typeof BroadcastChannel,
      }),
    })
    client.on('error', () => {})
    let closedOn: string | undefined
    client.on('status', (e) => {
      if (e.reason === 'token or url failed' && !closedOn) {
        closedOn = e.reason
        client.close()
      }
    })
    client.connect()
    await tick(100)
    expect(closedOn).toBe('token or url failed')
    expect(client.state).toBe('closed')
    await tick()
    // The leader's retry (setTimeout(queue, 20 s), the backoff's) was armed after leave() had cleared the timers.
    const left = vi.getTimerCount()
    await tick(20_000)
    expect({ left, after20s: vi.getTimerCount() }).toEqual({ left: 0, after20s: 0 })
  })
})
