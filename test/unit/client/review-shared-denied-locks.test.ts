/**
 * Review: belfry/shared where Web Locks exist but refuse every request. `navigator.locks.request()`
 * returns a promise rejected at once in a context the browser denies them (an opaque origin: a
 * sandboxed iframe without allow-same-origin, "SecurityError"; a document not fully active,
 * "InvalidStateError"). The tab takes each rejection for its lock stolen: follow() queues again at
 * once, whose request rejects again, in a loop of microtasks that never yields. The page freezes (no
 * timer, event or paint runs again), where README promises a socket per tab when Web Locks are missing.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { sharedConnection } from '../../../src/shared/index.js'
import { FakeChannel } from '../../helpers/locks.js'
import { cleanup, createClient, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
  FakeChannel.reset()
})
afterEach(cleanup)

/** The test's own bound on the loop: past it the manager stops answering, so the test can end and tell. */
const BOUND = 1000

describe('belfry/shared: Web Locks that refuse every request', () => {
  it('do not spin the event loop: the tab gets online on a socket of its own, asking for the lock a bounded number of times', async () => {
    let requests = 0
    const denied = {
      request: () => {
        if (++requests > BOUND) return new Promise(() => {})
        return Promise.reject(new DOMException('Access to the Locks API is denied in this context.', 'SecurityError'))
      },
      query: () => Promise.reject(new DOMException('Access to the Locks API is denied in this context.', 'SecurityError')),
    } as unknown as LockManager
    const server = startMockServer()
    const { client } = createClient(server, {
      connection: sharedConnection({ locks: denied, BroadcastChannel: FakeChannel as unknown as typeof BroadcastChannel }),
    })
    client.on('error', () => {})
    client.connect()
    await tick(2000)
    expect(requests).toBeLessThan(BOUND)
    await vi.waitFor(
      async () => {
        await tick(1000)
        expect(client.state).toBe('online')
      },
      { timeout: 10_000 },
    )
  })
})
