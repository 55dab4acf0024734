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

  count(userId: string): number {
    return this.#byUser.get(userId)?.size ?? 0
  }

  /** Number of users with at least one connection. */
  get users(): number {
    return this.#byUser.size
  }

  /** Number of open authenticated connections. */
  get connections(): number {
    let n = 0
    for (const set of this.#byUser.values()) n += set.size
    return n
  }
}

const EMPTY: ReadonlySet<Connection> = new Set()
