import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { cleanup, connected, createClient, startMockServer, tick } from '../../helpers/mock-server.js'

/** An EventTarget that counts its listeners, to see that close() removes them. */
class CountingTarget extends EventTarget {
  listeners = 0
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: AddEventListenerOptions | boolean,
  ) {
    this.listeners++
    super.addEventListener(type, listener, options)
  }
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: EventListenerOptions | boolean,
  ) {
    this.listeners--
    super.removeEventListener(type, listener, options)
  }
}

class FakeDocument extends CountingTarget {
  visibilityState: DocumentVisibilityState = 'visible'
}

/** Stubs window, document and navigator on globalThis, as in a browser. */
function browser({ onLine = true } = {}) {
  const win = new CountingTarget()
  const doc = new FakeDocument()
  const nav = { onLine }
  vi.stubGlobal('window', win)
  vi.stubGlobal('document', doc)
  vi.stubGlobal('navigator', nav)
  return {
    win,
    doc,
    nav,
    offline() {
      nav.onLine = false
      win.dispatchEvent(new Event('offline'))
    },
    online() {
      nav.onLine = true
      win.dispatchEvent(new Event('online'))
    },
    visibility(state: DocumentVisibilityState) {
      doc.visibilityState = state
      doc.dispatchEvent(new Event('visibilitychange'))
    },
  }
}

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

/**
 * Review (clocks): a 4029's delay is kept as a wall-clock time (`#notBefore = Date.now() + delay`), and an online event
 * waits out `#notBefore - Date.now()`. Stepped back an hour within the delay (NTP, the user setting the time right), a
 * network that drops and comes back (Wi-Fi switch, wake) leaves the client reconnecting for an hour and more, past the
 * 10 minutes that bound every 4029's delay (link.ts), instead of the 30 s the server asked for.
 */
describe('browser network events, review: a wall clock stepped back', () => {
  it('an offline then online within a 4029 delay waits out the rest of it, though the wall clock stepped back an hour', async () => {
    const env = browser()
    const server = startMockServer()
    const { client, log } = await connected(createClient(server))
    server.peer.close(4029, 'rate limited; retry=30000')
    await tick()
    expect(log.statuses.at(-1)).toMatchObject({ to: 'reconnecting', retryIn: 30_000 })
    await tick(1000)
    env.offline()
    vi.setSystemTime(Date.now() - 3_600_000)
    await tick(1000)
    env.online()
    await tick()
    // What is left of the 30 s (and never more than the 10 minutes that bound a 4029's delay)...
    expect(log.statuses.at(-1)!.retryIn!).toBeLessThanOrEqual(30_000)
    // ...and then the client is back.
    await tick(30_000)
    expect(server.peers).toHaveLength(2)
    expect(client.state).toBe('online')
  })
})
