import { afterEach, expect, it, vi } from 'vitest'
import { AuthError } from '../../src/index.js'
import { ClientPool } from '../helpers/client.js'
import { signToken } from '../helpers/jwt.js'
import { useServer } from '../helpers/server.js'

/**
 * docs/protocol.md, close codes: a token whose `sub` is no user id (1–64 characters, no control
 * characters) is invalid, 4001; with a token function the client retries once with a fresh token,
 * then stops: `closed` and an AuthError. The client copies the token's `sub` into the auth frame's
 * `userId`, and the server's frame parser refuses that frame as malformed before it looks at the
 * token: an `error` reply, no close, the auth times out (4008) and the client retries with backoff,
 * fetching a token each time, for ever.
 */
const start = useServer()
const clients = new ClientPool()
afterEach(() => clients.closeAll())

for (const [what, sub] of <[string, string][]>[
  ['65 characters', 'u'.repeat(65)],
  ['a control character', 'ann\u0007'],
]) {
  it(`a token whose sub has ${what} stops the client with an AuthError (4001), as an invalid token does`, async () => {
    const s = await start({ limits: { authTimeoutMs: 300 } })
    let calls = 0
    const { client, events } = clients.make({
      url: s.wsUrl,
      token: () => {
        calls++
        return signToken({ sub })
      },
      connectTimeout: 2000,
    })
    client.connect()
    await vi.waitFor(() => expect(client.state).toBe('closed'), { timeout: 5000, interval: 50 }).catch(() => {})
    // What happens instead: a ProtocolError per attempt (the auth frame's "userId" refused), then 4008 and a retry, without end.
    const seen = events.errors.map((e) => `${e.name} ${e.code}: ${e.message}`)
    expect(client.state, `${calls} token calls; errors: ${JSON.stringify(seen.slice(0, 2))}`).toBe('closed')
    expect(events.errors.at(-1)).toBeInstanceOf(AuthError)
    expect(events.errors.at(-1)).toMatchObject({ code: 4001 })
  })
}
