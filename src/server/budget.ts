import type { Limits } from './options.js'
import { TokenBucket } from './rate-limit.js'

/**
 * What one user may cost this process, shared by all the user's connections,
 * so that opening more sockets (or reconnecting) buys nothing:
 *
 * - `frames`: inbound frames after auth (`ratePerSecond`, `rateBurst`); past
 *   it the connection is closed with 4029 and the delay to wait.
 * - `bytes`: what the user's own requests make the server send — replay
 *   rounds and history pages (`sendBytesPerSecond`, `sendBurstBytes`). Past it
 *   the next round or page waits until the debt is paid: an honest client
 *   catching up is slowed, never refused.
 *
 * Budgets are per process: N processes behind a load balancer allow N times
 * as much in the worst case.
 */
export interface UserBudget {
  readonly frames: TokenBucket
  readonly bytes: TokenBucket
}

/** The budgets of the users this process has seen lately. */
export class Budgets {
  readonly #byUser = new Map<string, UserBudget>()
  /** The last of each user's row-locking store calls under way here (see {@link oneAtATime}). */
  readonly #storeCalls = new Map<string, Promise<void>>()

  constructor(private readonly limits: Readonly<Limits>) {}

  of(userId: string): UserBudget {
    let budget = this.#byUser.get(userId)
    if (!budget) {
      const l = this.limits
      budget = { frames: new TokenBucket(l.ratePerSecond, l.rateBurst), bytes: new TokenBucket(l.sendBytesPerSecond, l.sendBurstBytes) }
      this.#byUser.set(userId, budget)
    }
    return budget
  }

  /**
   * Forgets the budgets whose buckets have filled up again: a new one would be
   * the same. Connections look their user's budget up at each use, so an idle
   * user (connected or not) costs no memory here.
   */
  sweep(): void {
    for (const [userId, b] of this.#byUser) if (b.frames.full && b.bytes.full) this.#byUser.delete(userId)
  }

  /**
   * Runs a store call that locks the user's row (a mark read, a subscribe) once the user's earlier ones in
   * this process are over. Waiting on that row, each would hold one of the store's pooled connections: a
   * user's marks from a dozen sockets, within its frame budget, took a PostgreSQL pool of 10 and refused
   * every other user's publish.
   */
  oneAtATime<T>(userId: string, call: () => Promise<T>): Promise<T> {
    const before = this.#storeCalls.get(userId)
    const run = before ? before.then(call) : call()
    const done = run.then(
      () => {},
      () => {},
    )
    this.#storeCalls.set(userId, done)
    void done.then(() => {
      if (this.#storeCalls.get(userId) === done) this.#storeCalls.delete(userId)
    })
    return run
  }

  get size(): number {
    return this.#byUser.size
  }
}
