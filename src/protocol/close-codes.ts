/**
 * WebSocket close codes used by belfry. The 4xxx range is ours (RFC 6455 §7.4.2
 * reserves 4000–4999 for applications); the others are standard.
 */
export const CloseCode = {
  /** Normal close by the client. */
  Normal: 1000,
  /** Server shutting down (deploy, restart). */
  GoingAway: 1001,
  /** A frame was larger than the server accepts. */
  TooLarge: 1009,
  /** Too many malformed frames in a row. */
  ProtocolViolation: 4000,
  /** The token is invalid (bad signature, wrong algorithm, malformed). */
  TokenInvalid: 4001,
  /** The token has expired, before or during the session. */
  TokenExpired: 4002,
  /** Forbidden: user mismatch, or an origin that is not allowed. */
  Forbidden: 4003,
  /** No auth frame arrived in time. */
  AuthTimeout: 4008,
  /** The client read too slowly and its send buffer went over the bound. */
  SlowConsumer: 4009,
  /** Rate limited, or too many connections for this user. */
  RateLimited: 4029,
} as const

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode]

const RETRY = /\bretry=(\d{1,9})\b/

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
