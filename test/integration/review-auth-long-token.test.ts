import { afterEach, expect, it, vi } from 'vitest'
import { topicsClaim } from '../../src/server/index.js'
import { ClientPool } from '../helpers/client.js'
import { signToken } from '../helpers/jwt.js'
import { startServer, type TestServer } from '../helpers/server.js'

let t: TestServer | undefined
const pool = new ClientPool()

afterEach(async () => {
  pool.closeAll()
  await t?.dispose()
  t = undefined
})

// a77dc16 made a token whose `sub` is no user id end the client's retries (4001) instead of being
// refused as a malformed auth frame (no close, a 4008 time-out, retries for ever). A token longer than
// the parser's 8,192 characters takes that old path still: a `topics` claim (topicsClaim, README
// "Security") of a few hundred grants is enough. Such a token is no better on the next attempt, yet the
// client fetches a fresh one and retries for ever.
it('a signed token of more than 8,192 characters (a long topics claim) ends the client’s retries, as an invalid token does', async () => {
  t = await startServer({ authorizeSubscribe: topicsClaim(), limits: { authTimeoutMs: 300 } })
  const topics = Array.from({ length: 400 }, (_, i) => `tenant:acme-${i}:*`)
  const long = await signToken({ sub: 'ann', claims: { topics } })
  expect(long.length).toBeGreaterThan(8192)
  expect(long.length).toBeLessThan(16_000) // within maxAuthFrameBytes (16 KiB): parsed, not cut with 1009
  let calls = 0
  const { client, events } = pool.make({
    url: t.wsUrl,
    token: () => {
      calls++
      return long
    },
    connectTimeout: 2000,
  })
  client.connect()
  // Fixed: online (the token is valid) or closed with an AuthError (refused as invalid); either way no loop.
  await vi.waitFor(() => expect(['online', 'closed']).toContain(client.state), { timeout: 4000, interval: 50 }).catch(() => {})
  const seen = events.errors.slice(0, 2).map((e) => `${e.name} ${e.code}: ${e.message}`)
  expect({ state: client.state, calls }, `errors: ${JSON.stringify(seen)}`).toMatchObject({
    state: expect.stringMatching(/^(online|closed)$/),
    calls: expect.toSatisfy((n: number) => n <= 2),
  })
})
