/**
 * A token bucket: `burst` tokens, refilled at `perSecond`. One per connection,
 * checked on every inbound frame.
 */
export class TokenBucket {
  #tokens: number
  #last: number

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#tokens = burst
    this.#last = now()
  }

  /** Takes one token; false when the bucket is empty. */
  take(): boolean {
    const now = this.now()
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.perSecond)
    this.#last = now
    if (this.#tokens < 1) return false
    this.#tokens -= 1
    return true
  }

  /** Milliseconds until one token is available again. */
  get retryMs(): number {
    return Math.ceil(Math.max(0, 1 - this.#tokens) * (1000 / this.perSecond))
  }
}
