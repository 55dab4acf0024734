import { describe, expect, it } from 'vitest'
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
