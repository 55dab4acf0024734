import type { Connection } from './connection/connection.js'

/**
 * Which connections of which users are open in this process. Holds only
 * authenticated connections; a user with none has no entry.
 */
export class Registry {
  readonly #byUser = new Map<string, Set<Connection>>()
  /**
   * Those sent `auth_success` ({@link greet}), by user: what {@link users} and {@link connections}
   * count. One whose auth still reads the store is routed to and counted against the user's cap, but
   * has not authenticated yet (and may not: the read can fail, 1011).
   */
  readonly #greeted = new Map<string, Set<Connection>>()

  add(userId: string, connection: Connection): void {
    add(this.#byUser, userId, connection)
  }

  /** The connection has been sent `auth_success` (if it is still here). */
  greet(userId: string, connection: Connection): void {
    if (this.#byUser.get(userId)?.has(connection)) add(this.#greeted, userId, connection)
  }

  remove(userId: string, connection: Connection): void {
    drop(this.#byUser, userId, connection)
    drop(this.#greeted, userId, connection)
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

  /** The user's open connections sent `auth_success`. */
  authenticated(userId: string): number {
    return this.#greeted.get(userId)?.size ?? 0
  }

  /** Number of users with at least one authenticated connection (sent `auth_success`). */
  get users(): number {
    return this.#greeted.size
  }

  /** Number of open authenticated connections (sent `auth_success`). */
  get connections(): number {
    let n = 0
    for (const set of this.#greeted.values()) n += set.size
    return n
  }
}

function add(map: Map<string, Set<Connection>>, userId: string, connection: Connection): void {
  let set = map.get(userId)
  if (!set) {
    set = new Set()
    map.set(userId, set)
  }
  set.add(connection)
}

function drop(map: Map<string, Set<Connection>>, userId: string, connection: Connection): void {
  const set = map.get(userId)
  if (!set) return
  set.delete(connection)
  if (set.size === 0) map.delete(userId)
}

const EMPTY: ReadonlySet<Connection> = new Set()
