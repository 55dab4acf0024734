/**
 * A token bucket: `burst` tokens, refilled at `perSecond`. `take` refuses
 * when there are too few; `charge` always takes and may leave a debt, which
 * {@link waitMs} says how long to wait out.
 */
export class TokenBucket {
  #tokens: number
  #last: number

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    // A monotonic clock: the wall clock steps back (NTP, a VM restored), and the time since the last
    // refill would be negative, a debt as long as the step for every user who spent anything.
    private readonly now: () => number = performance.now.bind(performance),
  ) {
    this.#tokens = burst
    this.#last = now()
  }

  #refill(): number {
    const now = this.now()
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.perSecond)
    this.#last = now
    return this.#tokens
  }

  /** Takes `n` tokens; false (taking none) when fewer are left. */
  take(n = 1): boolean {
    if (this.#refill() < n) return false
    this.#tokens -= n
    return true
  }

  /** Takes `n` tokens even if that leaves a debt. */
  charge(n: number): void {
    this.#refill()
    this.#tokens -= n
  }

  /** Milliseconds until one token is available again. */
  get retryMs(): number {
    return Math.ceil(Math.max(0, 1 - this.#refill()) * (1000 / this.perSecond))
  }

  /** Milliseconds until a debt is paid off (0 without one). */
  get waitMs(): number {
    return Math.ceil(Math.max(0, -this.#refill()) * (1000 / this.perSecond))
  }

  /** The bucket is full: nothing spent that has not been refilled. */
  get full(): boolean {
    return this.#refill() >= this.burst
  }
}
