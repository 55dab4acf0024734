import { describe, expect, it, vi } from 'vitest'
import { mintToken, tokenVerifier, verifyToken } from '../../src/server/auth.js'

const SECRET = 'unit-secret-0123456789abcdef'

describe('tokenVerifier', () => {
  it('checks a token mintToken made: its user, and when it expires', async () => {
    const before = Date.now()
    const check = tokenVerifier(SECRET)(await mintToken(SECRET, 'ann', 60))
    expect(check).toMatchObject({ ok: true, userId: 'ann', claims: { sub: 'ann' } })
    const expiresAt = (check as { expiresAt: number }).expiresAt
    expect(expiresAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 60_000)
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 60_000)
  })

  it('refuses a token of another secret, and says so rather than throwing', async () => {
    expect(verifyToken(await mintToken(SECRET, 'ann'), 'another-secret-0123456789')).toEqual({
      ok: false,
      expired: false,
      message: 'token invalid',
    })
    expect(tokenVerifier(SECRET)(42 as unknown as string)).toEqual({ ok: false, expired: false, message: 'token invalid' })
  })

  it.each([
    ['a key object', { type: 'secret' }, 'object'],
    ['undefined', undefined, 'undefined'],
    ['an empty string', '', 'an empty string'],
  ])('throws a TypeError for a secret that is %s', (_, secret, got) => {
    expect(() => tokenVerifier(secret as string)).toThrow(new TypeError(`the token secret must be a non-empty string; got ${got}`))
  })
})

// A token every server refuses (a user id it does not take, one born expired or never expiring) is no token to sign.
const MINT_SECRET = 'mint-secret-0123456789'

describe('mintToken: a bad argument is a TypeError, never a token the server refuses', () => {
  it('refuses a user id the server refuses, naming it', async () => {
    for (const userId of ['', 'a'.repeat(65), 'ann\n', 42, undefined]) {
      const outcome = await mintToken(MINT_SECRET, userId as never).then(
        (token) => ({ token, verified: verifyToken(token, MINT_SECRET) }),
        (error: unknown) => error,
      )
      expect(outcome, `userId ${JSON.stringify(userId)}`).toBeInstanceOf(TypeError)
      expect((outcome as Error).message).toMatch(/user ?id/i)
    }
    // A good one still works.
    expect(verifyToken(await mintToken(MINT_SECRET, 'ann', 60), MINT_SECRET)).toMatchObject({ ok: true, userId: 'ann' })
  })

  it('refuses a ttl that makes no usable token (0, negative, NaN, Infinity), naming it', async () => {
    for (const ttl of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
      const outcome = await mintToken(MINT_SECRET, 'ann', ttl).then(
        (token) => ({ token, verified: verifyToken(token, MINT_SECRET) }),
        (error: unknown) => error,
      )
      expect(outcome, `ttl ${ttl}`).toBeInstanceOf(TypeError)
      expect((outcome as Error).message).toMatch(/ttl/i)
    }
  })

  it('refuses a ttl under a second: exp is whole seconds, so one made late in a second would be born expired', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      vi.setSystemTime(1_800_000_000_600) // 600 ms into a second: floor(now + 0.3 s) is the second already begun
      for (const ttl of [0.1, 0.3, 0.999]) {
        const outcome = await mintToken(MINT_SECRET, 'ann', ttl).then(
          (token) => verifyToken(token, MINT_SECRET),
          (error: unknown) => error,
        )
        expect(outcome, `ttl ${ttl}`).toBeInstanceOf(TypeError)
        expect((outcome as Error).message).toMatch(/ttlSeconds .*≥ 1.*got 0\.\d+/)
      }
      // A whole second made at the same moment is good until the next second begins (exp: floor(now + 1)).
      expect(verifyToken(await mintToken(MINT_SECRET, 'ann', 1), MINT_SECRET)).toMatchObject({ ok: true, userId: 'ann' })
    } finally {
      vi.useRealTimers()
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
