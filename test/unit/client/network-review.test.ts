import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { advanceToAfterStatus, cleanup, connected, createClient, startMockServer, tick } from '../../helpers/mock-server.js'

/** Stubs window, document and navigator on globalThis, as in a browser (as network.test.ts does). */
function browser() {
  const win = new EventTarget()
  const nav = { onLine: true }
  vi.stubGlobal('window', win)
  vi.stubGlobal('document', Object.assign(new EventTarget(), { visibilityState: 'visible' }))
  vi.stubGlobal('navigator', nav)
  return {
    offline() {
      nav.onLine = false
      win.dispatchEvent(new Event('offline'))
    },
    online() {
      nav.onLine = true
      win.dispatchEvent(new Event('online'))
    },
  }
}

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

describe('browser network events within a 4029 delay (review of a46a18c)', () => {
  // a46a18c: "within a 4029's delay, the backoff stays where it is". From `reconnecting` it does (network.test.ts);
  // from `offline`, the online event goes through #retry(), which counts one more attempt than was made.
  it('an offline then online within a 4029 delay leaves the attempt count as it is, as an online alone does', async () => {
    const env = browser()
    const server = startMockServer({
      auth: (peer) => {
        if (peer.index === 0) peer.authSuccess()
        else if (peer.index === 2) peer.close(4029, 'rate limited; retry=30000')
        else peer.close(1011)
      },
    })
    const { log } = await connected(createClient(server))
    server.peer.close(1011)
    await tick()
    for (let i = 0; i < 100 && server.peers.length < 3; i++) await tick(100)
    await tick()
    expect(log.statuses.at(-1)).toMatchObject({ to: 'reconnecting', retryIn: 30_000, attempt: 3 })
    env.offline()
    await tick(1000)
    env.online()
    await tick()
    expect(server.peers).toHaveLength(3) // still waiting out the 4029
    expect(log.statuses.at(-1)).toMatchObject({ to: 'reconnecting', reason: 'online', attempt: 3 })
    await advanceToAfterStatus(log, 30_000)
    await tick()
    expect(server.peers).toHaveLength(4)
    // The same count as without the offline/online (network.test.ts: attempt 4).
    expect(log.statuses.at(-1)).toMatchObject({ to: 'reconnecting', reason: 'close 1011', attempt: 4 })
  })
})
