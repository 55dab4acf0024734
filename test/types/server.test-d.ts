import { describe, expectTypeOf, it } from 'vitest'
import type { STORE_OPERATIONS, Store } from '../../src/server/store/store.js'

describe('server types', () => {
  it('lists every Store method but close in STORE_OPERATIONS (the options check and the metrics read it)', () => {
    type Listed = (typeof STORE_OPERATIONS)[number]
    // `deployment` is a value read once, not an operation.
    expectTypeOf<Exclude<Exclude<keyof Store, 'close' | 'deployment'>, Listed>>().toBeNever()
  })
})
