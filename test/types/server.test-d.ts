import { describe, expectTypeOf, it } from 'vitest'
import { type NotificationServer, SqliteStore } from '../../src/server/index.js'
import type { NotificationInput, STORE_OPERATIONS, Store } from '../../src/server/store/store.js'

describe('server types', () => {
  it('lists every Store method but close in STORE_OPERATIONS (the options check and the metrics read it)', () => {
    type Listed = (typeof STORE_OPERATIONS)[number]
    // `deployment` is a value read once, not an operation.
    expectTypeOf<Exclude<Exclude<keyof Store, 'close' | 'deployment'>, Listed>>().toBeNever()
  })

  it('takes undefined for the SqliteStore options and the notification fields that may be absent (exactOptionalPropertyTypes)', () => {
    const maybe = (name: string): number | undefined => (process.env[name] ? Number(process.env[name]) : undefined)
    new SqliteStore(':memory:', { maxBytes: maybe('MAX_BYTES'), walSizeLimit: maybe('WAL'), fanOutBatch: undefined, pruneBatch: undefined })
    const body: { priority?: 'low' | 'high' | undefined; data?: { build: number } | undefined } = {}
    const input: NotificationInput = { title: 't', body: 'b', priority: body.priority, data: body.data }
    expectTypeOf<NotificationServer['sendToUser']>().toBeCallableWith('ann', input)
    // @ts-expect-error the title is required and cannot be undefined
    expectTypeOf<NotificationServer['sendToUser']>().toBeCallableWith('ann', { title: undefined, body: 'b' })
  })
})
