import { errors, type JWTPayload, jwtVerify, SignJWT } from 'jose'
import { isUserId, MAX_ID_LENGTH } from '../protocol/index.js'

/** A verified token: whose it is and when it stops being valid. */
export type TokenCheck =
  | { ok: true; userId: string; expiresAt: number; claims: Readonly<JWTPayload> }
  | { ok: false; expired: boolean; message: string }

/** Turns the shared secret into the key jose wants. */
export function secretKey(secret: string): Uint8Array {
  return new TextEncoder().encode(secret)
}

/**
 * The shared secret as a verifying key, made once: given the secret's bytes,
 * jose would import the key again on every verify, which costs more than the
 * verify itself.
 */
export function verifyingKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey('raw', secretKey(secret) as Uint8Array<ArrayBuffer>, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])
}

/**
 * Verifies an HS256 user token: signature, `exp` (required) and `sub`
 * (required). The algorithm is pinned, so `alg: none` and every other
 * algorithm are refused.
 */
export async function verifyToken(token: string, key: Uint8Array | CryptoKey | Promise<CryptoKey>): Promise<TokenCheck> {
  try {
    const { payload } = await jwtVerify(token, await key, { algorithms: ['HS256'], requiredClaims: ['sub', 'exp'] })
    if (!isUserId(payload.sub)) {
      return { ok: false, expired: false, message: `token "sub" must be a user id of 1–${MAX_ID_LENGTH} characters, no control characters` }
    }
    return { ok: true, userId: payload.sub, expiresAt: (payload.exp as number) * 1000, claims: payload }
  } catch (error) {
    if (error instanceof errors.JWTExpired) return { ok: false, expired: true, message: 'token expired' }
    return { ok: false, expired: false, message: 'token invalid' }
  }
}

/**
 * Signs a token for `userId`, valid for `ttlSeconds`. For tests, the demo's
 * dev mode and apps that mint tokens in the same process.
 */
export async function mintToken(secret: string, userId: string, ttlSeconds = 3600): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(secretKey(secret))
}
