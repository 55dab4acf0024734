// One constant per code, so a bundle inlines the numbers it uses and needs no table.
/** Normal close by the client. */
export const NORMAL = 1000
/** Server shutting down (deploy, restart). */
export const GOING_AWAY = 1001
/** A frame was larger than the server accepts. */
export const TOO_LARGE = 1009
/** The server failed (its store did): during auth, a replay round (a gap's too), a subscribe or an unsubscribe. */
export const INTERNAL_ERROR = 1011
/** Too many malformed frames in a row, or too many frames before auth. */
export const PROTOCOL_VIOLATION = 4000
/** The token is invalid (bad signature, wrong algorithm, malformed). */
export const TOKEN_INVALID = 4001
/** The token has expired, before or during the session. */
export const TOKEN_EXPIRED = 4002
/** Forbidden: user mismatch, or an origin that is not allowed. */
export const FORBIDDEN = 4003
/** No auth frame arrived in time. */
export const AUTH_TIMEOUT = 4008
/** The client read too slowly and its send buffer went over the bound. */
export const SLOW_CONSUMER = 4009
/** Rate limited, or too many connections for this user. */
export const RATE_LIMITED = 4029

/**
 * WebSocket close codes used by belfry. The 4xxx range is ours (RFC 6455 §7.4.2
 * reserves 4000–4999 for applications); the others are standard.
 */
export const CloseCode = {
  Normal: NORMAL,
  GoingAway: GOING_AWAY,
  TooLarge: TOO_LARGE,
  InternalError: INTERNAL_ERROR,
  ProtocolViolation: PROTOCOL_VIOLATION,
  TokenInvalid: TOKEN_INVALID,
  TokenExpired: TOKEN_EXPIRED,
  Forbidden: FORBIDDEN,
  AuthTimeout: AUTH_TIMEOUT,
  SlowConsumer: SLOW_CONSUMER,
  RateLimited: RATE_LIMITED,
} as const

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode]

const RETRY = /\bretry=(\d+)/

/**
 * Builds a close reason that carries a retry delay, e.g. `rate limited; retry=5000`.
 * Close reasons are limited to 123 bytes (RFC 6455 §5.5), so keep `text` short.
 */
export function retryReason(text: string, retryMs: number): string {
  return `${text}; retry=${Math.max(0, Math.round(retryMs))}`
}

/** Reads the retry delay (ms) from a close reason made by {@link retryReason}. */
export function parseRetryReason(reason: string): number | undefined {
  const match = RETRY.exec(reason)
  return match ? Number(match[1]) : undefined
}
