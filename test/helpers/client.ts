import WebSocket from 'ws'
import {
  type BelfryError,
  type ClientOptions,
  type Notification,
  NotificationClient,
  type ReadEvent,
  type StatusEvent,
} from '../../src/index.js'

/** Small backoff so reconnects in tests take tens of milliseconds, not seconds. */
export const FAST_BACKOFF = { initial: 50, max: 300 } as const

/** What a test has to give: the rest defaults to Node's `ws` and {@link FAST_BACKOFF}. */
export type TestClientOptions = Partial<ClientOptions> & Pick<ClientOptions, 'url' | 'token'>

/** Everything a client emitted, in order. Recording stops when the client closes (it drops its listeners then). */
export interface Recorder {
  notifications: Notification[]
  statuses: StatusEvent[]
  errors: BelfryError[]
  reads: ReadEvent[]
  unread: number[]
  /** The seqs of the notifications, in the order they were handed to the app. */
  seqs(): number[]
  /** How often the client reached `state`. */
  count(state: StatusEvent['to']): number
}

/** Subscribes to every event of a client and keeps what it emits. */
export function record(client: NotificationClient): Recorder {
  const r: Recorder = {
    notifications: [],
    statuses: [],
    errors: [],
    reads: [],
    unread: [],
    seqs: () => r.notifications.map((n) => n.seq),
    count: (state) => r.statuses.filter((s) => s.to === state).length,
  }
  client.on('notification', (n) => r.notifications.push(n))
  client.on('status', (s) => r.statuses.push(s))
  client.on('error', (e) => r.errors.push(e))
  client.on('read', (e) => r.reads.push(e))
  client.on('unread', ({ count }) => r.unread.push(count))
  return r
}

/**
 * Makes clients for a test and closes them all afterwards.
 *
 * @example
 * const clients = new ClientPool()
 * afterEach(() => clients.closeAll())
 * const { client, events } = clients.make({ url: t.wsUrl, token: () => t.token('ann') })
 */
export class ClientPool {
  readonly #clients: NotificationClient[] = []

  /** A new, not yet connected client with its recorder. */
  make(options: TestClientOptions): { client: NotificationClient; events: Recorder } {
    const client = new NotificationClient({ WebSocket, backoff: FAST_BACKOFF, ...options })
    this.#clients.push(client)
    return { client, events: record(client) }
  }

  /** Makes a client, connects it and waits until it is online. */
  async online(options: TestClientOptions): Promise<{ client: NotificationClient; events: Recorder }> {
    const made = this.make(options)
    made.client.connect()
    await made.client.ready()
    return made
  }

  closeAll(): void {
    for (const c of this.#clients.splice(0)) c.close()
  }
}

/** The integers from `from` to `to`, inclusive. */
export const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i)

/**
 * Asserts that `check` keeps passing for `ms`: the bounded way to show that
 * something (a retry, a duplicate, a frame) does not happen.
 */
export async function holds(check: () => void, ms: number): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    check()
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  check()
}
