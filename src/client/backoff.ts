/** Shape of the default exponential backoff. */
export interface BackoffOptions {
  /** Upper bound of the first delay, in ms. @default 500 */
  initial: number
  /** Growth of the upper bound per attempt. @default 2 */
  factor: number
  /** Largest upper bound, in ms. @default 30000 */
  max: number
}

/**
 * Exponential backoff with full jitter: a delay drawn uniformly from
 * [0, min(max, initial × factor^attempt)). Jitter spreads a crowd of clients
 * that lost the server at the same moment, so they do not return together.
 * Pure: the attempt (0 for the first retry) and the random source decide it.
 */
export function fullJitter(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(options.max, options.initial * options.factor ** attempt))
}
