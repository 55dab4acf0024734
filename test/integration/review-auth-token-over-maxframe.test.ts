/**
 * Review: an auth frame over maxAuthFrameBytes is now refused as a token too large (4001), which ends
 * the client's retries. One over maxFrameBytes (64 KiB) never reaches that check: `ws` refuses it
 * itself with 1009 (maxPayload), which the client takes for a retryable close, so a page whose backend
 * mints such a token (a topics claim of a few thousand grants) sends it again for ever, as before the fix.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { AuthError } from '../../src/index.js'
import { topicsClaim } from '../../src/server/index.js'
import { ClientPool } from '../helpers/client.js'
import { signToken } from '../helpers/jwt.js'
import { startServer, type TestServer } from '../helpers/server.js'

let t: TestServer | undefined
afterEach(async () => {
  await t?.dispose()
  t = undefined
})

describe('review: a token too large', () => {
  it('a token over maxFrameBytes (64 KiB) stops the client with an AuthError too, not a retry for ever', async () => {
    t = await startServer({ authorizeSubscribe: topicsClaim() })
    const topics = Array.from({ length: 3500 }, (_, i) => `tenant:acme-${i}:*`)
    const huge = await signToken({ sub: 'ann', claims: { topics } })
    expect(huge.length).toBeGreaterThan(64 * 1024)
    const pool = new ClientPool()
    try {
      let calls = 0
      const { client, events } = pool.make({
        url: t.wsUrl,
        token: () => {
          calls++
          return huge
        },
        connectTimeout: 2000,
        backoff: { initial: 50, max: 100 },
      })
      client.connect()
      await vi.waitFor(() => expect(client.state).toBe('closed'), { timeout: 5000, interval: 50 }).catch(() => {})
      const reasons = events.statuses.filter((e) => e.to === 'reconnecting').map((e) => e.reason)
      expect(client.state, `${calls} token calls; retries: ${reasons.length} (${[...new Set(reasons)]})`).toBe('closed')
      expect(events.errors.at(-1)).toBeInstanceOf(AuthError)
    } finally {
      pool.closeAll()
    }
  })
})
