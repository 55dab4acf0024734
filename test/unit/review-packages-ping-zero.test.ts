/**
 * Review: the client takes `pingInterval: 0` (its check allows "a number from 0 to 2^31-1") and then pings in a
 * loop: #beat() re-arms setTimeout(…, 0) after every ping, so an online client sends a ping every timer tick (1 ms in
 * Node, 4 ms in a browser) for as long as it is online. 0 is what many clients use for "no heartbeat"; here it
 * floods the socket and the user's frame budget — the very behaviour the NaN regression fixed ("pingInterval: NaN
 * then pinged every ~1 ms"). Either fix passes: refuse 0 with the TypeError naming the option, or do not loop.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { cleanup, connected, createClient, startMockServer, tick } from '../helpers/mock-server.js'

afterEach(cleanup)

describe('pingInterval: 0', () => {
  it('is refused with a TypeError naming it, or does not ping in a loop (one second online: a few pings at most)', async () => {
    vi.useFakeTimers()
    const server = startMockServer()
    let made: ReturnType<typeof createClient>
    try {
      made = createClient(server, { pingInterval: 0 })
    } catch (error) {
      expect(error).toBeInstanceOf(TypeError)
      expect(String(error)).toContain('options.pingInterval')
      return
    }
    await connected(made)
    await tick(1000)
    const pings = server.sent('ping').length
    expect(pings, `${pings} pings in one second`).toBeLessThanOrEqual(2)
  })
})
