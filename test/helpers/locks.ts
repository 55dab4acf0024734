import { sharedConnection } from '../../src/shared/index.js'

/**
 * A Web Locks manager for Node (which has BroadcastChannel but no
 * `navigator.locks`), exclusive mode only, as the browser behaves: requests
 * for a name are granted one at a time in order; a held lock is released when
 * its callback's promise settles; `signal` withdraws a request not yet
 * granted; `steal` takes the lock at once and rejects the holder's request
 * with an AbortError (its callback runs on, no longer holding anything).
 *
 * `holder(name)` and `crash(id)` are for tests: `crash` releases every lock a
 * "tab" holds, as the browser does when a tab's process dies.
 */
interface Entry {
  owner: string
  callback: LockGrantedCallback<unknown>
  resolve(value: unknown): void
  reject(error: unknown): void
}

const abortError = () => new DOMException('The request was aborted.', 'AbortError')

export class FakeLocks {
  readonly #held = new Map<string, Entry>()
  readonly #queues = new Map<string, Entry[]>()

  /** A lock manager for one tab: its requests are owned by `owner`. */
  forTab(owner: string): LockManager {
    return {
      request: ((name: string, options: LockOptions | LockGrantedCallback<unknown>, callback?: LockGrantedCallback<unknown>) => {
        const cb = (typeof options === 'function' ? options : callback) as LockGrantedCallback<unknown>
        const opts = typeof options === 'function' ? {} : options
        return this.#request(owner, name, opts, cb)
      }) as LockManager['request'],
      query: async () => ({ held: [], pending: [] }),
    }
  }

  /** Who holds the lock on `name`, if anyone. */
  holder(name: string): string | undefined {
    return this.#held.get(name)?.owner
  }

  /** The tab's process died: its locks are gone and its requests withdrawn. */
  crash(owner: string): void {
    for (const [name, queue] of this.#queues)
      this.#queues.set(
        name,
        queue.filter((e) => e.owner !== owner),
      )
    for (const [name, entry] of this.#held) if (entry.owner === owner) this.#release(name, entry)
  }

  #request(owner: string, name: string, options: LockOptions, callback: LockGrantedCallback<unknown>): Promise<unknown> {
    if (options.steal && options.signal) return Promise.reject(new DOMException('steal and signal', 'NotSupportedError'))
    if (options.signal?.aborted) return Promise.reject(abortError())
    return new Promise((resolve, reject) => {
      const entry: Entry = { owner, callback, resolve, reject }
      const current = this.#held.get(name)
      if (options.steal && current) {
        this.#held.delete(name)
        current.reject(abortError())
      }
      if (!this.#held.has(name)) return this.#grant(name, entry)
      const queue = this.#queues.get(name) ?? []
      queue.push(entry)
      this.#queues.set(name, queue)
      options.signal?.addEventListener('abort', () => {
        const q = this.#queues.get(name) ?? []
        if (!q.includes(entry)) return
        this.#queues.set(
          name,
          q.filter((e) => e !== entry),
        )
        reject(abortError())
      })
    })
  }

  #grant(name: string, entry: Entry): void {
    this.#held.set(name, entry)
    const lock = { name, mode: 'exclusive' } as Lock
    Promise.resolve()
      .then(() => entry.callback(lock))
      .then(
        (value) => {
          entry.resolve(value)
          this.#release(name, entry)
        },
        (error) => {
          entry.reject(error)
          this.#release(name, entry)
        },
      )
  }

  #release(name: string, entry: Entry): void {
    if (this.#held.get(name) !== entry) return // stolen meanwhile: nothing of ours to release
    this.#held.delete(name)
    const next = this.#queues.get(name)?.shift()
    if (next) this.#grant(name, next)
  }
}

const channels = new Map<string, Set<FakeChannel>>()

/** BroadcastChannel over fake timers: each message reaches the other channels of its name on a 0 ms timer. */
export class FakeChannel {
  onmessage: ((e: MessageEvent) => void) | null = null
  constructor(readonly name: string) {
    if (!channels.has(name)) channels.set(name, new Set())
    channels.get(name)!.add(this)
  }
  #closed = false
  /** As a browser's: throws once closed, and a channel closed before a message arrives never gets it. */
  postMessage(m: unknown): void {
    if (this.#closed) throw new DOMException('BroadcastChannel is closed.', 'InvalidStateError')
    for (const c of channels.get(this.name) ?? [])
      if (c !== this) setTimeout(() => c.#closed || c.onmessage?.({ data: structuredClone(m) } as MessageEvent), 0)
  }
  close(): void {
    this.#closed = true
    channels.get(this.name)?.delete(this)
  }
  /** Forgets every channel: each test starts with none. */
  static reset(): void {
    channels.clear()
  }
}

/** A belfry/shared connection for the tab `tab`, on these locks and the fake channel. */
export function tabConnection(locks: FakeLocks, tab: string) {
  return sharedConnection({ locks: locks.forTab(tab), BroadcastChannel: FakeChannel as unknown as typeof BroadcastChannel })
}
