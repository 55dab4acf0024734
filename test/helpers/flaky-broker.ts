import type { Broker, BrokerEvent } from '../../src/server/index.js'

/** An in-process broker whose connection the test takes away (`down()`) and gives back (`back()`). */
export class FlakyBroker implements Broker {
  up = true
  readonly #handlers = new Set<(event: BrokerEvent) => void>()
  readonly #status = new Set<(up: boolean) => void>()

  publish(events: readonly BrokerEvent[]): void {
    if (!this.up) throw new Error('broker down')
    for (const event of events) for (const handler of this.#handlers) handler(event)
  }
  subscribe(handler: (event: BrokerEvent) => void): () => void {
    this.#handlers.add(handler)
    return () => this.#handlers.delete(handler)
  }
  async ready(): Promise<void> {}
  onStatus(handler: (up: boolean) => void): () => void {
    this.#status.add(handler)
    return () => this.#status.delete(handler)
  }
  close(): void {}
  down(): void {
    this.up = false
    for (const handler of this.#status) handler(false)
  }
  back(): void {
    this.up = true
    for (const handler of this.#status) handler(true)
  }
}
