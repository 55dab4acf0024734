/** A key's value and the callers waiting for its result. */
interface Gathered<V, R> {
  value: V
  done: { resolve(r: R): void; reject(e: unknown): void }[]
}

/**
 * Writes by key, gathered for a while and done together: `write` gets each
 * key's value (`merge`d when a key came more than once) in one call (one
 * transaction, one statement) and gives each key its result; every caller of
 * the key gets that result, or the write's error if it fails. `schedule`
 * says when the gathered writes go: after a short window ({@link newUserWindow},
 * {@link ackWindow}).
 */
export class Batcher<V, R> {
  #pending = new Map<string, Gathered<V, R>>()
  /** What the writes in progress have (an asynchronous write's, until it settles; a flush may start before the last settled). */
  readonly #writing = new Set<Map<string, Gathered<V, R>>>()
  readonly #merge: (a: V, b: V) => V
  readonly #write: (values: Map<string, V>) => Map<string, R> | Promise<Map<string, R>>
  readonly #schedule: (flush: () => void) => void

  constructor(
    merge: (a: V, b: V) => V,
    write: (values: Map<string, V>) => Map<string, R> | Promise<Map<string, R>>,
    schedule: (flush: () => void) => void,
  ) {
    this.#merge = merge
    this.#write = write
    this.#schedule = schedule
  }

  add(key: string, value: V): Promise<R> {
    if (this.#pending.size === 0) this.#schedule(() => void this.flush())
    const entry = this.#pending.get(key)
    if (entry) entry.value = this.#merge(entry.value, value)
    const waiting = entry?.done ?? []
    if (!entry) this.#pending.set(key, { value, done: waiting })
    return new Promise((resolve, reject) => waiting.push({ resolve, reject }))
  }

  /**
   * The value gathered for `key` that is not written yet, if any: what is waiting and what is being
   * written, `merge`d (an older value waiting must not hide a newer one being written, as a stale
   * ack from another tab after a higher one).
   */
  unwritten(key: string): V | undefined {
    // Read at each auth (a user's counters): it makes no array, and most times no write is in flight.
    let value = this.#pending.get(key)?.value
    for (const gathered of this.#writing) {
      const entry = gathered.get(key)
      if (entry) value = value === undefined ? entry.value : this.#merge(entry.value, value)
    }
    return value
  }

  /** Writes what is pending now (when scheduled, or before the store closes). `write` is called before this first waits. */
  async flush(): Promise<void> {
    const pending = this.#pending
    if (pending.size === 0) return
    this.#pending = new Map()
    this.#writing.add(pending)
    let results: Map<string, R>
    try {
      results = await this.#write(new Map([...pending].map(([key, e]) => [key, e.value])))
    } catch (error) {
      for (const e of pending.values()) for (const d of e.done) d.reject(error)
      return
    } finally {
      this.#writing.delete(pending)
    }
    for (const [key, e] of pending) for (const d of e.done) d.resolve(results.get(key)!)
  }
}

/**
 * How long users new to the store gather before one write records them. A
 * user's first connect waits for its row (a broadcast reaches only the users
 * stored when it is published), so this is the most it waits longer, once.
 * New users come one auth frame at a time (a launch, a first sign-in wave, a
 * new database): a turn of the event loop held about three, each write a commit.
 */
const NEW_USER_WINDOW_MS = 5

/** A {@link Batcher} schedule: the new users of {@link NEW_USER_WINDOW_MS} go together. */
export const newUserWindow = (flush: () => void): void => void setTimeout(flush, NEW_USER_WINDOW_MS)

/**
 * How long acks gather before one write records them. None is urgent (they
 * ride on the heartbeat, up to an interval late, or come with a cursor at
 * auth), and they come one at a time, spread over the clients: written each
 * on its own, every ack would cost a commit (or a round trip and a row lock).
 */
export const ACK_WINDOW_MS = 50

/** A {@link Batcher} schedule: the acks of {@link ACK_WINDOW_MS} go together. */
export const ackWindow = (flush: () => void): void => void setTimeout(flush, ACK_WINDOW_MS)
