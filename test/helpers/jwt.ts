import { SignJWT } from 'jose'
import { SECRET } from './server.js'

/** What {@link signToken} puts in a token; omitted claims are left out on purpose. */
export interface TokenSpec {
  /** The `sub` claim; `null` leaves it out. @default 'alice' */
  sub?: string | null
  /** `exp` in seconds from now (negative for the past); `null` leaves it out. @default 3600 */
  expIn?: number | null
  /** HMAC algorithm of the signature. @default 'HS256' */
  alg?: 'HS256' | 'HS384' | 'HS512'
  /** Secret the token is signed with. @default the test server's SECRET */
  secret?: string
  /** Payload claims set as given, any type (a `sub` here stands unless `sub` is also set; an `iat` here stands). */
  claims?: Record<string, unknown>
}

/** Signs a token with full control over its claims, algorithm and secret, for refusal tests. */
export function signToken({ sub = 'alice', expIn = 3600, alg = 'HS256', secret = SECRET, claims = {} }: TokenSpec = {}): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' })
  if (!('iat' in claims)) jwt.setIssuedAt()
  if (sub !== null) jwt.setSubject(sub)
  if (expIn !== null) jwt.setExpirationTime(Math.floor(Date.now() / 1000) + expIn)
  return jwt.sign(new TextEncoder().encode(secret))
}

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

/** An unsecured JWT (RFC 7519 §6): header `{"alg":"none"}` and an empty signature. */
export function unsignedToken(payload: Record<string, unknown>): string {
  return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(payload)}.`
}

/** Replaces a signed token's payload while keeping its header and signature. */
export function withPayload(token: string, payload: Record<string, unknown>): string {
  const [header, , signature] = token.split('.')
  return `${header}.${b64url(payload)}.${signature}`
}

/** Decodes a token's payload (no verification). */
export function payloadOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>
}
