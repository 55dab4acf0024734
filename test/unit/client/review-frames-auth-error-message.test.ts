import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { cleanup, createClient, startMockServer, tick } from '../../helpers/mock-server.js'

const uncaught: unknown[] = []
const onUncaught = (e: unknown) => uncaught.push(e)

beforeEach(() => {
  vi.useFakeTimers()
  uncaught.length = 0
  process.on('uncaughtException', onUncaught)
})
afterEach(() => {
  process.off('uncaughtException', onUncaught)
  cleanup()
})

describe('an auth_error whose message is no string', () => {
  it('throws nothing out of the socket handler; the 4003 that follows still stops the client with an AuthError', async () => {
    const server = startMockServer({
      auth: (peer) => {
        // JSON can say this: an object whose toString is no function (String() of it throws a TypeError).
        peer.send('{"type":"auth_error","code":"forbidden","message":{"toString":1}}')
        peer.close(4003, 'forbidden')
      },
    })
    const { client, log } = createClient(server)
    let thrown: unknown
    try {
      client.connect()
      await tick(100)
    } catch (e) {
      thrown = e
    }
    // Today: new AuthError(message) in Link's close handler throws 'Cannot convert object to primitive value'
    // out of the socket's close listener; the client neither reports the AuthError nor closes, and retries.
    expect(thrown).toBeUndefined()
    expect(uncaught).toEqual([])
    expect(client.state).toBe('closed')
    expect(log.errors.map((e) => e.name)).toContain('AuthError')
  })
})
