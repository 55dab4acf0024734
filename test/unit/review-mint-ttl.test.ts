import { afterEach, describe, expect, it, vi } from 'vitest'
import { mintToken, verifyToken } from '../../src/server/auth.js'

const SECRET = 'mint-secret-0123456789'

afterEach(() => {
  vi.useRealTimers()
})

/**
 * mintToken promises a TypeError for an argument that would make a token every server refuses, a token born
 * expired included. A ttl below one second is finite and > 0, yet `exp` is whole seconds: minted in the second
 * half of a second, floor(now + ttl) is the current second, already past.
 */
describe('mintToken with a ttl under a second', () => {
  it('either refuses the ttl with a TypeError or makes a token the server accepts when it is made', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(1_800_000_000_600) // 600 ms into a second
    for (const ttl of [0.1, 0.3]) {
      const outcome = await mintToken(SECRET, 'ann', ttl).then(
        (token) => verifyToken(token, SECRET),
        (error: unknown) => error,
      )
      if (outcome instanceof TypeError) continue
      expect(outcome, `ttl ${ttl}`).toMatchObject({ ok: true, userId: 'ann' })
    }
  })
})
