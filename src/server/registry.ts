import type { Connection } from './connection/connection.js'

/**
 * Which connections of which users are open in this process. Holds only
 * authenticated connections; a user with none has no entry.
 */
export class Registry {
  readonly #byUser = new Map<string, Set<Connection>>()

  add(userId: string, connection: Connection): void {
    let set = this.#byUser.get(userId)
    if (!set) {
      set = new Set()
      this.#byUser.set(userId, set)
    }
    set.add(connection)
  }

  remove(userId: string, connection: Connection): void {
    const set = this.#byUser.get(userId)
    if (!set) return
    set.delete(connection)
    if (set.size === 0) this.#byUser.delete(userId)
  }

  /** The user's open connections (empty when none). */
  of(userId: string): ReadonlySet<Connection> {
    return this.#byUser.get(userId) ?? EMPTY
  }

  /** The users with at least one connection. */
  userIds(): IterableIterator<string> {
    return this.#byUser.keys()
  }

  /** The user's open connections, its auths still reading the store included: what the per-user cap counts. */
  count(userId: string): number {
    return this.#byUser.get(userId)?.size ?? 0
  }

  /**
   * The user's open connections sent `auth_success` ({@link Connection.authenticated}): what the
   * counts report. One whose auth still reads the store is routed to and counted against the cap,
   * but has not authenticated yet (and may not: the read can fail, 1011).
   */
  authenticated(userId: string): number {
    let n = 0
    for (const c of this.of(userId)) if (c.authenticated) n++
    return n
  }

  /** Number of users with at least one authenticated connection (for stats: a pass over them). */
  get users(): number {
    let n = 0
    for (const userId of this.#byUser.keys()) if (this.authenticated(userId) > 0) n++
    return n
  }

  /** Number of open authenticated connections (for stats: a pass over them). */
  get connections(): number {
    let n = 0
    for (const userId of this.#byUser.keys()) n += this.authenticated(userId)
    return n
  }
}

const EMPTY: ReadonlySet<Connection> = new Set()
