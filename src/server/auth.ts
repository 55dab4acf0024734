import { createSigner, createVerifier, TokenError } from 'fast-jwt'
import { isUserId, MAX_ID_LENGTH } from '../protocol/index.js'
import { shown } from './options.js'

/** A verified token: whose it is and when it stops being valid. */
export type TokenCheck =
  | { ok: true; userId: string; expiresAt: number; claims: Readonly<Record<string, unknown>> }
  | { ok: false; expired: boolean; message: string }

/** Checks one user token; made once per secret by {@link tokenVerifier}. */
export type TokenVerifier = (token: string) => TokenCheck

/**
 * How far ahead of this server's clock a token's `nbf` may be (ms): the clock of the backend that
 * mints tokens may run a little ahead, and a token it makes valid "from now" would otherwise be
 * refused for good (an invalid token ends a client's retries). `exp` has no such leeway.
 */
const NBF_LEEWAY_MS = 60_000

/** The answer for a token refused by its signature or a claim other than `exp` or `sub`: no reason told. */
const INVALID: TokenCheck = Object.freeze({ ok: false, expired: false, message: 'token invalid' })

/**
 * A verifier of HS256 user tokens signed with `secret`: signature, `exp`
 * (required) and `sub` (required). The algorithm is pinned, so `alg: none`
 * and every other algorithm are refused.
 *
 * It runs on node:crypto's HMAC (fast-jwt), synchronously: a verify through
 * WebCrypto, which jose uses, hands each token to the thread pool and back,
 * and costs each connect several times the HMAC itself.
 */
export function tokenVerifier(secret: string): TokenVerifier {
  if (typeof secret !== 'string' || secret === '') {
    throw new TypeError(`the token secret must be a non-empty string; got ${secret === '' ? 'an empty string' : typeof secret}`)
  }
  // `nbf` is checked below, with its leeway.
  const verify = createVerifier({ key: secret, algorithms: ['HS256'], requiredClaims: ['sub', 'exp'], ignoreNotBefore: true })
  return (token) => {
    let payload: Record<string, unknown>
    try {
      payload = verify(token)
    } catch (error) {
      if (error instanceof TokenError && error.code === TokenError.codes.expired)
        return { ok: false, expired: true, message: 'token expired' }
      return INVALID
    }
    // The registered time claims are numbers (RFC 7519 §4.1): fast-jwt checks `exp`, not `iat` or (ignored) `nbf`.
    if (payload.iat !== undefined && typeof payload.iat !== 'number') return INVALID
    const { nbf } = payload
    if (nbf !== undefined && !(typeof nbf === 'number' && nbf * 1000 <= Date.now() + NBF_LEEWAY_MS)) return INVALID
    if (!isUserId(payload.sub)) {
      return { ok: false, expired: false, message: `token "sub" must be a user id of 1–${MAX_ID_LENGTH} characters, no control characters` }
    }
    return { ok: true, userId: payload.sub, expiresAt: (payload.exp as number) * 1000, claims: payload }
  }
}

/** Verifies one user token (see {@link tokenVerifier}, which a caller checking many should keep). */
export function verifyToken(token: string, secret: string): TokenCheck {
  return tokenVerifier(secret)(token)
}

/**
 * Signs a token for `userId`, valid for `ttlSeconds`. For tests, the demo's
 * dev mode and apps that mint tokens in the same process. An argument that
 * would make a token every server refuses (a user id it does not take, a
 * token born expired or never expiring) is a TypeError.
 */
export async function mintToken(secret: string, userId: string, ttlSeconds = 3600): Promise<string> {
  if (typeof secret !== 'string' || secret === '')
    throw new TypeError(`mintToken: secret must be a non-empty string; got ${shown(secret, true)}`)
  if (!isUserId(userId)) {
    throw new TypeError(`mintToken: userId must be a user id of 1–${MAX_ID_LENGTH} characters, no control characters; got ${shown(userId)}`)
  }
  // `exp` is whole seconds, rounded down (a token lives at most ttlSeconds): under 1 s, one made late in a
  // second would be born expired.
  if (!(typeof ttlSeconds === 'number' && Number.isFinite(ttlSeconds) && ttlSeconds >= 1)) {
    throw new TypeError(`mintToken: ttlSeconds must be a finite number of seconds ≥ 1 (exp is whole seconds); got ${shown(ttlSeconds)}`)
  }
  return createSigner({ key: secret, algorithm: 'HS256', expiresIn: ttlSeconds * 1000 })({ sub: userId })
}
