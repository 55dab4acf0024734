import { type Logger, pino } from 'pino'
import { LOGGER_METHODS, requireMethods, shown } from '../options.js'
import type { Delivery, Store } from '../store/store.js'

/**
 * What a broker carries: serialisable data only, so a real broker can carry it
 * between processes.
 *
 * - `notification`: one publish. `shared` is the frame without `seq` and `read`
 *   (serialised once); each receiving process completes it for the recipients
 *   it has connections of, and for no one else.
 * - `read`: a read-state change of one user, as a ready frame.
 *
 * Either may carry `deployment`: the {@link Store.deployment} of the process
 * that published it. Users are named by bare id and seq, which mean nothing
 * outside their deployment: a server drops an event stamped with another
 * deployment's token (two deployments on one Redis channel, e.g. on two
 * database numbers of one Redis server, which pub/sub ignores). An event
 * without one is taken: a store of one process has none, and neither have
 * the events of a belfry from before stamps (a rolling deploy).
 */
export type BrokerEvent = (
  | {
      kind: 'notification'
      shared: string
      deliveries: readonly Delivery[]
      /**
       * Users (or `all`) whose connections read the store for their latest
       * seq: a publish answered again for its idempotency key, whose first
       * attempt may have committed without being announced. In a notification
       * event with no deliveries, so that a process that does not know the
       * field does nothing with it.
       */
      catchUp?: readonly string[] | 'all'
    }
  | { kind: 'read'; userId: string; frame: string /** The connection that made the change; it got its own reply. */; origin?: string }
) & { deployment?: string }

/**
 * Fan-out between whatever committed a change and the connections that must
 * hear of it, on this process and on every other process sharing the store.
 * The in-process default suits one server process; `test/contract/broker.ts`
 * is the suite any broker runs against.
 *
 * The rules:
 * - Every subscriber on every process gets every event, in the order it was
 *   published (per publisher).
 * - Events cross process boundaries as JSON: nothing but plain data.
 * - The broker is a fast path, not the truth: a lost event costs latency, not
 *   a notification. A connection that sees a gap in a user's seqs reads the
 *   store; so `publish` may reject (the server logs it and delivers to its own
 *   connections directly) and nothing is retried through the broker.
 */
export interface Broker {
  /** Hands events to every subscriber; may resolve before remote processes have them. */
  publish(events: readonly BrokerEvent[]): void | Promise<void>
  /** Registers the handler for events; returns a function that removes it. */
  subscribe(handler: (event: BrokerEvent) => void): () => void
  /**
   * Resolves once every event published from then on reaches this process's
   * subscribers; rejects when the broker cannot be reached. The server waits
   * for it before it accepts connections: a connection subscribed late could
   * miss an event published between its replay and the subscription.
   */
  ready(): Promise<void>
  /**
   * Whether events cross between this process and the others now, both ways:
   * theirs reach this process and this process's reach them. False while a
   * connection of the broker is lost (either way).
   */
  readonly up: boolean
  /**
   * Registers a handler called with `false` when events may have stopped
   * reaching this process, or this process's events the others (a connection
   * to the broker is lost), and with `true` when they cross both ways again —
   * events published in between may be lost, and the server reads the store
   * for its connections then (the other processes read it within 30 s, or on
   * their own broker's return). Returns a remover.
   */
  onStatus(handler: (up: boolean) => void): () => void
  /** Stops delivering and releases connections. Safe to call twice. */
  close(): void | Promise<void>
}

/**
 * The default broker: hands events to the subscribers of this process, synchronously. It is always up.
 * A subscriber that throws is logged and costs the others nothing, as with {@link RedisBroker}: the
 * change it tells of is committed already, and every subscriber gets every event.
 */
export class InProcessBroker implements Broker {
  readonly #handlers = new Set<(event: BrokerEvent) => void>()
  readonly #log: Logger
  readonly up = true

  /** `logger`: where a subscriber's failure is logged (the server gives its own); by default a pino logger at level 'info'. */
  constructor(options: { logger?: Logger | undefined } = {}) {
    if (typeof options !== 'object' || options === null)
      throw new TypeError(`InProcessBroker: options must be an object; got ${shown(options)}`)
    // Checked now: a logger without error() would be found out only when a subscriber throws, and the rest miss the event.
    requireMethods(options.logger, 'InProcessBroker: options.logger', LOGGER_METHODS)
    this.#log = options.logger ?? pino()
  }

  publish(events: readonly BrokerEvent[]): void {
    for (const event of events) {
      for (const handler of this.#handlers) {
        try {
          handler(event)
        } catch (error) {
          this.#log.error({ err: error }, 'in-process broker: event handler threw')
        }
      }
    }
  }

  subscribe(handler: (event: BrokerEvent) => void): () => void {
    this.#handlers.add(handler)
    return () => this.#handlers.delete(handler)
  }

  async ready(): Promise<void> {}

  onStatus(_handler: (up: boolean) => void): () => void {
    return () => {}
  }

  close(): void {
    this.#handlers.clear()
  }
}
