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

describe("the article's server: a notification whose id (its publisher's, of any type) is an object with a non-callable toString", () => {
  it('throws nothing out of the socket handler, and the notification is handed over or reported', async () => {
    // The article's server: auth_success without a seq.
    const server = startMockServer({ auth: (peer) => peer.send({ type: 'auth_success', message: 'Connected to notification service' }) })
    const { client, log } = createClient(server)
    client.connect()
    await tick()
    expect(client.state).toBe('online')
    let thrown: unknown
    try {
      server.peer.send('{"type":"notification","title":"t","body":"b","priority":"low","id":{"toString":1}}')
      await tick()
    } catch (e) {
      thrown = e
    }
    // String(n.id ?? made) throws 'Cannot convert object to primitive value' before the emit.
    expect(thrown).toBeUndefined()
    expect(uncaught).toEqual([])
    // Handed over, or refused as a malformed frame on `error`: not lost in silence.
    expect(log.notifications.length === 1 || log.errors.some((e) => e.name === 'ProtocolError')).toBe(true)
  })
})
