/**
 * Review: `client.ready({ signal, timeout })` does not check `signal`. Given something that is no
 * AbortSignal (the AbortController itself, a common slip), the promise rejects with the engine's
 * "signal?.addEventListener is not a function", after `ready()` has already set its timeout timer and
 * status listener. When that timer fires, its cleanup calls `signal.removeEventListener` and throws out
 * of a timer callback: an uncaught exception, which ends a Node process (a backend using the client).
 * The project's standard: a bad argument is a TypeError that says what was given and what is expected.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { cleanup, createClient, startMockServer } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

describe('ready({ signal }) with no AbortSignal', () => {
  it('rejects with a TypeError that says an AbortSignal is expected, and leaves no timer that throws later', async () => {
    const server = startMockServer({ auth: false }) // never online
    const { client } = createClient(server, { connectTimeout: 60_000 })
    const controller = new AbortController()
    const error = await client.ready({ signal: controller as never, timeout: 1000 }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TypeError)
    expect((error as Error).message).toMatch(/AbortSignal/i)
    // Past the timeout: nothing may throw out of ready()'s timer (fake timers rethrow what a callback throws).
    await expect(vi.advanceTimersByTimeAsync(2000)).resolves.not.toThrow()
  })
})
