import type { Logger } from 'pino'
import type { Retention } from './options.js'
import type { PruneBatch, RetentionRule, Store, UnreadChange } from './store/store.js'

/** How often the pruner runs a pass (and once at start). */
export const PRUNE_INTERVAL_MS = 60_000

const DAY_MS = 86_400_000

/** What a retention pass removed, in all its batches. */
export type PruneTotals = Omit<PruneBatch, 'next'>

/** The store's rule for `retention` now: entries stored more than `days` ago go, and all but the newest `maxPerUser`. */
export function retentionRule(retention: Retention, now = Date.now()): RetentionRule {
  const { days, maxPerUser } = retention
  return {
    ...(days !== undefined && { before: new Date(now - days * DAY_MS).toISOString() }),
    ...(maxPerUser !== undefined && { maxPerUser }),
  }
}

/**
 * Removes old inbox entries in the background: a pass at start and every
 * {@link PRUNE_INTERVAL_MS}, batch after batch of the store's `prune` (each a
 * short transaction), giving the event loop a turn between two so publishes
 * and delivery go on. One pass at a time: one asked for during another (the
 * admin API's) runs after it. A failed pass is logged and the next one tries
 * again.
 */
export class Pruner {
  readonly #store: Store
  readonly #retention: Readonly<Retention> | undefined
  readonly #log: Logger
  #timer: NodeJS.Timeout | undefined
  /** The pass in progress or queued last. */
  #queue: Promise<unknown> = Promise.resolve()
  #closed = false

  /** Told, after each batch, of the users whose unread count it lowered (the server tells their connections). */
  readonly #lowered: ((changes: readonly UnreadChange[]) => void) | undefined

  constructor(store: Store, retention: Readonly<Retention> | undefined, log: Logger, lowered?: (changes: readonly UnreadChange[]) => void) {
    this.#store = store
    this.#retention = retention
    this.#log = log
    this.#lowered = lowered
  }

  /** The configured retention (undefined: keep everything). */
  get retention(): Readonly<Retention> | undefined {
    return this.#retention
  }

  /** Starts the periodic passes (none without a configured retention). */
  start(): void {
    if (!this.#retention || this.#closed || this.#timer) return
    const tick = () => {
      this.run().catch((error: unknown) => this.#log.error({ err: error }, 'retention pass failed; retrying on the next one'))
    }
    this.#timer = setInterval(tick, PRUNE_INTERVAL_MS)
    this.#timer.unref()
    tick()
  }

  /** Runs a pass with `retention` (the configured one when absent), after any pass in progress; resolves with what it removed. */
  run(retention: Readonly<Retention> | undefined = this.#retention): Promise<PruneTotals> {
    const pass = this.#queue.then(() => this.#pass(retention))
    this.#queue = pass.catch(() => {})
    return pass
  }

  /** Stops the timer and waits for the pass in progress, which stops at its next batch. */
  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    await this.#queue
  }

  async #pass(retention: Readonly<Retention> | undefined): Promise<PruneTotals> {
    const totals: PruneTotals = { removed: 0, unread: 0, users: 0, notifications: 0 }
    if (!retention || this.#closed) return totals
    const rule = retentionRule(retention)
    const started = Date.now()
    let after: number | undefined = 0
    while (after !== undefined && !this.#closed) {
      const batch: PruneBatch = await this.#store.prune(rule, after)
      totals.removed += batch.removed
      totals.unread += batch.unread
      totals.users += batch.users
      totals.notifications += batch.notifications
      if (batch.unreadChanges?.length) this.#lowered?.(batch.unreadChanges)
      after = batch.next
      // A turn for the event loop: what waits (a publish, a frame) runs before the next batch.
      await new Promise((resolve) => (batch.removed > 0 ? setTimeout(resolve, 1) : setImmediate(resolve)))
    }
    if (totals.removed > 0) this.#log.info({ ...totals, rule, ms: Date.now() - started }, 'retention: pruned')
    return totals
  }
}
