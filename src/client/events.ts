import mittImport, { type Emitter as Mitt } from 'mitt'
import { BelfryError } from './errors.js'

// mitt ships ES modules with CommonJS-style types: TypeScript sees a namespace where there is a function.
const mitt = ((mittImport as { default?: unknown }).default ?? mittImport) as typeof import('mitt').default

/**
 * A typed emitter: mitt's, whose `on()` returns an unsubscribe function and
 * whose subscribers cannot break each other: one that throws is reported on
 * `error` and the rest still run. (A throwing `error` subscriber is ignored:
 * reporting it would loop.)
 */
export interface Emitter<Events extends { error: BelfryError }> extends Omit<Mitt<Events>, 'on'> {
  on<K extends keyof Events>(type: K, handler: (event: Events[K]) => void): () => void
}

/** mitt's own object with `on` replaced: a class wrapping each of its methods would cost bytes. */
export function createEmitter<Events extends { error: BelfryError }>(): Emitter<Events> {
  const m = mitt<Events>()
  return {
    ...m,
    on(type, handler) {
      const safe = (event: Events[typeof type]) => {
        try {
          handler(event)
        } catch (cause) {
          if (type !== 'error') m.emit('error', new BelfryError(`a "${type as string}" subscriber threw`, { cause }) as Events['error'])
        }
      }
      m.on(type, safe)
      return () => m.off(type, safe)
    },
  }
}
