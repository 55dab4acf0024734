import mittImport from 'mitt'
import { BelfryError } from './errors.js'

// mitt ships ES modules with CommonJS-style types: TypeScript sees a namespace where there is a function.
const mitt = ((mittImport as { default?: unknown }).default ?? mittImport) as typeof import('mitt').default

/**
 * A typed emitter on mitt whose `on()` returns an unsubscribe function and
 * whose subscribers cannot break each other: one that throws is reported on
 * `error` and the rest still run. (A throwing `error` subscriber is ignored:
 * reporting it would loop.)
 */
export class Emitter<Events extends { error: BelfryError }> {
  readonly #mitt = mitt<Events>()

  on<K extends keyof Events>(type: K, handler: (event: Events[K]) => void): () => void {
    const safe = (event: Events[K]) => {
      try {
        handler(event)
      } catch (cause) {
        if (type !== 'error') this.emit('error', new BelfryError(`a "${type as string}" subscriber threw`, { cause }) as Events['error'])
      }
    }
    this.#mitt.on(type, safe)
    return () => this.#mitt.off(type, safe)
  }

  emit<K extends keyof Events>(type: K, event: Events[K]): void {
    this.#mitt.emit(type, event)
  }

  clear(): void {
    this.#mitt.all.clear()
  }
}
