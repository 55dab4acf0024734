/**
 * Review: `mintToken` (belfry-server's export for backends) checks nothing. It signs a token for a user id
 * the server refuses (empty, over 64 characters, a control character, not a string) and one born expired
 * (ttl 0 or negative) or without `exp` (ttl Infinity), all of which every belfry server refuses at auth
 * (4001, or 4002 for ever): the app finds out from a client that closes with an AuthError, not from the
 * call. The project's standard: a bad argument is a TypeError that says what was given and what is expected.
 */
import { describe, expect, it } from 'vitest'
import { mintToken, verifyToken } from '../../src/server/index.js'

const SECRET = 'review-mint-secret-0123456789'

describe('mintToken: a bad argument is a TypeError, never a token the server refuses', () => {
  it('refuses a user id the server refuses, naming it', async () => {
    for (const userId of ['', 'a'.repeat(65), 'ann\n', 42, undefined]) {
      const outcome = await mintToken(SECRET, userId as never).then(
        (token) => ({ token, verified: verifyToken(token, SECRET) }),
        (error: unknown) => error,
      )
      expect(outcome, `userId ${JSON.stringify(userId)}`).toBeInstanceOf(TypeError)
      expect((outcome as Error).message).toMatch(/user ?id/i)
    }
    // A good one still works.
    expect(verifyToken(await mintToken(SECRET, 'ann', 60), SECRET)).toMatchObject({ ok: true, userId: 'ann' })
  })

  it('refuses a ttl that makes no usable token (0, negative, NaN, Infinity), naming it', async () => {
    for (const ttl of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
      const outcome = await mintToken(SECRET, 'ann', ttl).then(
        (token) => ({ token, verified: verifyToken(token, SECRET) }),
        (error: unknown) => error,
      )
      expect(outcome, `ttl ${ttl}`).toBeInstanceOf(TypeError)
      expect((outcome as Error).message).toMatch(/ttl/i)
    }
  })

  it('refuses a secret that is no non-empty string with a TypeError that names the secret', async () => {
    for (const secret of ['', 123, undefined]) {
      const outcome = await mintToken(secret as never, 'ann').catch((error: unknown) => error)
      expect(outcome, `secret ${String(secret)}`).toBeInstanceOf(TypeError)
      expect((outcome as Error).message).toMatch(/secret/i)
    }
  })
})
