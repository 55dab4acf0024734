/**
 * Review: belfry/shared where BroadcastChannel exists but its constructor throws (a context the browser
 * denies it, as an opaque origin: "SecurityError: The operation is insecure."). The tab's join() makes
 * the channel after its providers answered, outside their try: the SecurityError rejects join(), which
 * connect() started with `void`. An unhandled rejection (it ends a Node process), no `error` event, and
 * the client `connecting` for ever, where README promises a socket per tab when sharing cannot work.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { sharedConnection } from '../../../src/shared/index.js'
import { FakeLocks } from '../../helpers/locks.js'
import { cleanup, createClient, startMockServer, tick } from '../../helpers/mock-server.js'

const escaped: unknown[] = []
const onRejection = (reason: unknown) => escaped.push(reason)
beforeEach(() => {
  vi.useFakeTimers()
  escaped.length = 0
  process.on('unhandledRejection', onRejection)
})
afterEach(() => {
  process.off('unhandledRejection', onRejection)
  cleanup()
})

class DeniedChannel {
  constructor() {
    throw new DOMException('The operation is insecure.', 'SecurityError')
  }
}

describe('belfry/shared: a BroadcastChannel whose constructor throws', () => {
  it('leaves no unhandled rejection, and the tab gets online on a socket of its own', async () => {
    const server = startMockServer()
    const { client } = createClient(server, {
      connection: sharedConnection({
        locks: new FakeLocks().forTab('a'),
        BroadcastChannel: DeniedChannel as unknown as typeof BroadcastChannel,
      }),
    })
    client.on('error', () => {})
    client.connect()
    await tick(5000)
    vi.useRealTimers()
    await new Promise((resolve) => setTimeout(resolve, 50)) // a real turn: Node tells unhandled rejections then
    expect(escaped.map(String)).toEqual([])
    expect(client.state).toBe('online')
  })
})
