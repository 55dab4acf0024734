import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { cleanup, connected, createClient, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

describe('an error frame that answers no request, with requestId: null', () => {
  // A server in another language that writes a missing requestId as null (Go's nil, Python's None): the error
  // answers no request (a refused resume, an `internal` for a topic), and the README says errors go to `error`.
  it('is reported on the error event, as one without a requestId is', async () => {
    const server = startMockServer()
    const { log } = await connected(createClient(server))
    server.peer.send({ type: 'error', code: 'internal', message: 'subscription to "deploys" failed', requestId: null })
    await tick()
    // Today: `f.requestId === undefined` is false for null, and the frame is dropped in silence.
    expect(log.errors.map((e) => [e.name, e.code])).toEqual([['ProtocolError', 'internal']])
  })
})
