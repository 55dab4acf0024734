import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { cleanup, connected, createClient, jwt, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

describe('an auth_error during the session (the token expired), then its close', () => {
  // protocol.md, Close codes, Notes: "Its message is the auth_error frame's message when one arrived before the close".
  it('with a token string: the AuthError carries the auth_error message', async () => {
    const server = startMockServer()
    const { client, log } = await connected(createClient(server, { token: jwt('u1') }))
    server.peer.send({ type: 'auth_error', code: 'token_expired', message: 'your session has expired' })
    server.peer.close(4002, 'bye')
    await tick()
    expect(client.state).toBe('closed')
    expect(log.errors).toHaveLength(1)
    expect(log.errors[0]).toMatchObject({ name: 'AuthError', code: 4002, message: 'your session has expired' })
  })
})
