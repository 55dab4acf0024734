import { afterEach, expect, it, vi } from 'vitest'
import { ConnectionError } from '../../src/index.js'
import { ClientPool } from '../helpers/client.js'
import { useServer } from '../helpers/server.js'

/**
 * README, Errors: a ConnectionError is "an attempt failed before the socket opened: the server is
 * unreachable, the URL has no WebSocket endpoint … or TLS failed". A token provider that does not
 * answer within connectTimeout (its backend hangs) is none of those: no socket was even tried, the
 * server is up. The client still reports it as a ConnectionError, "cannot connect to : connect
 * timeout", naming an empty URL: the app (and its operator) are sent to look at the server and the
 * network, and hear nothing of the token provider.
 */
const start = useServer()
const clients = new ClientPool()
afterEach(() => clients.closeAll())

it('a token provider that never answers is not reported as a ConnectionError naming an empty URL', async () => {
  const s = await start()
  const { client, events } = clients.make({ url: s.wsUrl, token: () => new Promise<string>(() => {}), connectTimeout: 300 })
  client.connect()
  await vi.waitFor(() => expect(events.errors.length).toBeGreaterThanOrEqual(1), { timeout: 3000 })
  const error = events.errors[0]!
  expect(s.server.stats().sockets).toBe(0) // nothing was tried against the server
  expect(`${error.name}: ${error.message}`).not.toMatch(/cannot connect to :/)
  expect(error).not.toBeInstanceOf(ConnectionError)
})
