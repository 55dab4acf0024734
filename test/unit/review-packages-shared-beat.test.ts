/**
 * Review: sharedConnection() takes a `beat` (or `stale`) past setTimeout's range. The client's delays and
 * belfry/desktop's `interval` are held to 0 – 2^31-1 ms because a larger delay overflows to 1 ms (Node) or
 * wraps to 0 (browsers, WebIDL `long`); `beat` only has to be "a positive number", so `beat: 2 ** 31`
 * (or Number.MAX_SAFE_INTEGER, for "as rarely as possible") makes the leader post its heartbeat on the
 * BroadcastChannel every millisecond, and every tab wake to it. Either fix passes: refuse it with a
 * TypeError naming it (as the other entries do), or keep it from spinning.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { sharedConnection } from '../../src/shared/index.js'
import { FakeChannel, FakeLocks } from '../helpers/locks.js'
import { cleanup, createClient, startMockServer } from '../helpers/mock-server.js'

afterEach(() => {
  cleanup()
  FakeChannel.reset()
})

describe('sharedConnection({ beat }) past setTimeout range', () => {
  it.each([
    ['beat', 2 ** 31],
    ['beat', Number.MAX_SAFE_INTEGER],
  ])('%s: %d is refused with a TypeError naming it, or the leader does not beat every millisecond', async (name, value) => {
    let connection: ReturnType<typeof sharedConnection>
    try {
      connection = sharedConnection({
        [name]: value,
        locks: new FakeLocks().forTab('a'),
        BroadcastChannel: FakeChannel as unknown as typeof BroadcastChannel,
      })
    } catch (error) {
      // The fix the other entries chose: a TypeError that names the option.
      expect(error).toBeInstanceOf(TypeError)
      expect(String(error)).toContain(name)
      return
    }
    // Accepted: then the leader must not spin. Real timers: what Node's setInterval does with the delay.
    const posts = vi.spyOn(FakeChannel.prototype, 'postMessage')
    const { client } = createClient(startMockServer(), { connection })
    client.connect()
    await vi.waitFor(() => expect([client.mode, client.state]).toEqual(['leader', 'online']), { timeout: 5000 })
    const before = posts.mock.calls.length
    await new Promise((r) => setTimeout(r, 300))
    const heartbeats = posts.mock.calls.length - before
    // With the default beat (1 s) none or one; here one every millisecond.
    expect(heartbeats, `the leader posted ${heartbeats} messages in 300 ms`).toBeLessThanOrEqual(2)
  })
})
