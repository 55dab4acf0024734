/**
 * Where the client keeps its cursor (the last `seq` handed to the app).
 * `localStorage` fits as it is.
 */
export interface CursorStorage {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  /**
   * The cursor does not outlive the page or process: the client then acks
   * `ackDelay` after each delivery even to a server that acks by its
   * heartbeat, so that the next page or process (starting with no cursor,
   * from the acknowledged one) does not get again what this one got. A
   * storage whose `setItem` throws (Safari's private mode, a full quota) is
   * taken as volatile from that write on.
   */
  volatile?: boolean | undefined
}

/** A storage that lives as long as the page or process. */
export function memoryStorage(): CursorStorage {
  const map = new Map<string, string>()
  return { getItem: (k) => map.get(k) ?? null, setItem: (k, v) => void map.set(k, v), volatile: true }
}

/** `localStorage` where it exists and works (not in Node, not in some private modes), else memory. */
export function defaultStorage(): CursorStorage {
  try {
    const ls = globalThis.localStorage
    ls.getItem('') // throws where storage is blocked
    return ls
  } catch {
    return memoryStorage()
  }
}
