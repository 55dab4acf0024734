import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { cleanup, createClient, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

describe('a server that accepts the token, then closes 4002 at once, every time', () => {
  // Its clock ahead of the token's issuer, or a session sweep that expires what auth just took: the fresh token is
  // accepted, the session ends within ms. The immediate-retry allowance is renewed only after minUptime online.
  it('backs off instead of reconnecting at once forever', async () => {
    const server = startMockServer({
      auth: (peer) => {
        peer.authSuccess()
        peer.close(4002, 'token expired')
      },
    })
    const { client } = createClient(server)
    client.connect()
    await tick(2000)
    expect(server.peers.length).toBeLessThanOrEqual(10)
  })
})
