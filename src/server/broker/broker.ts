import type { Delivery } from '../store/store.js'

/**
 * What a broker carries: serialisable data only, so a real broker can carry it
 * between processes.
 *
 * - `notification`: one publish. `shared` is the frame without `seq` and `read`
 *   (serialised once); each receiving process completes it for the recipients
 *   it has connections of, and for no one else.
 * - `read`: a read-state change of one user, as a ready frame.
 */
export type BrokerEvent =
  | { kind: 'notification'; shared: string; deliveries: readonly Delivery[] }
  | { kind: 'read'; userId: string; frame: string /** The connection that made the change; it got its own reply. */; origin?: string }

/**
 * Fan-out between whatever committed a change and the connections that must
 * hear of it. The in-process default suits one server process; a real broker
 * (Redis pub/sub, say) can take its place when several processes share a store.
 * Events must arrive in the order they were published.
 */
export interface Broker {
  publish(events: readonly BrokerEvent[]): void | Promise<void>
  /** Registers the handler for events; returns a function that removes it. */
  subscribe(handler: (event: BrokerEvent) => void): () => void
  close(): void | Promise<void>
}

/** The default broker: hands events to the subscribers of this process, synchronously. */
export class InProcessBroker implements Broker {
  readonly #handlers = new Set<(event: BrokerEvent) => void>()

  publish(events: readonly BrokerEvent[]): void {
    for (const event of events) for (const handler of this.#handlers) handler(event)
  }

  subscribe(handler: (event: BrokerEvent) => void): () => void {
    this.#handlers.add(handler)
    return () => this.#handlers.delete(handler)
  }

  close(): void {
    this.#handlers.clear()
  }
}
