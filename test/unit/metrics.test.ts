import { afterEach, describe, expect, it } from 'vitest'
import { createMetrics, type Metrics } from '../../src/server/metrics.js'
import { IdempotencyKeyReusedError, type Store } from '../../src/server/store/store.js'

const source = { stats: () => ({ users: 0, connections: 0, sockets: 0, unauthenticated: 0 }), brokerUp: () => true }

let metrics: Metrics | undefined
afterEach(() => metrics?.stop())

async function series(m: Metrics): Promise<Map<string, number>> {
  const { text } = await m.scrape()
  const lines = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'))
  return new Map(lines.map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]))
}

describe('Metrics.timeStore', () => {
  it("hands back the store's own promise, times each operation, and counts failures (rejected, thrown, or a value at once)", async () => {
    metrics = createMetrics(source)
    const stored = Promise.resolve(3)
    class Custom {
      #acks = 0
      ack(): Promise<number> {
        this.#acks++ // a private field: the method is called on the store itself
        return stored
      }
      after(): Promise<never> {
        return Promise.reject(new Error('read failed'))
      }
      history(): never {
        throw new Error('thrown at once')
      }
      topics(): string[] {
        return ['a'] // not a promise: passed on as it is
      }
      publish(): Promise<never> {
        return Promise.reject(new IdempotencyKeyReusedError('used for another request'))
      }
      async close(): Promise<void> {}
      get acks() {
        return this.#acks
      }
    }
    const custom = new Custom()
    const store = metrics.timeStore(custom as unknown as Store)
    expect(store.ack('ann', 1)).toBe(stored)
    await expect(store.after('ann', 0, 1)).rejects.toThrow('read failed')
    expect(() => store.history('ann', undefined, 1)).toThrow('thrown at once')
    expect(store.topics('ann')).toEqual(['a'])
    await expect(store.publish({ userId: 'ann' } as never, { title: 't', body: '' })).rejects.toThrow(IdempotencyKeyReusedError)
    expect(custom.acks).toBe(1)
    // Methods the store lacks stay missing; close is passed through.
    expect((store as Partial<Store>).fanOut).toBeUndefined()
    await store.close()

    const s = await series(metrics)
    expect(s.get('belfry_store_operation_seconds_count{operation="ack"}')).toBe(1)
    expect(s.get('belfry_store_operation_seconds_count{operation="after"}')).toBe(1)
    expect(s.get('belfry_store_operation_seconds_count{operation="history"}')).toBe(1)
    expect(s.get('belfry_store_operation_seconds_count{operation="topics"}')).toBe(1)
    expect(s.get('belfry_store_errors_total{operation="ack"}')).toBe(0)
    expect(s.get('belfry_store_errors_total{operation="after"}')).toBe(1)
    expect(s.get('belfry_store_errors_total{operation="history"}')).toBe(1)
    // A key reused for another request is the publisher's mistake: timed, not a store error.
    expect(s.get('belfry_store_operation_seconds_count{operation="publish"}')).toBe(1)
    expect(s.get('belfry_store_errors_total{operation="publish"}')).toBe(0)
  })

  it('serves the counters kept as plain numbers, and lists every label value at 0 from the start', async () => {
    metrics = createMetrics(source)
    const before = await series(metrics)
    expect(before.get('belfry_deliveries_total')).toBe(0)
    expect(before.get('belfry_closes_total{code="other"}')).toBe(0)
    expect(before.get('belfry_auth_failures_total{reason="token_invalid"}')).toBe(0)
    expect(before.get('belfry_publishes_total{kind="broadcast"}')).toBe(0)
    for (let i = 0; i < 5; i++) metrics.deliveries.inc()
    metrics.replayed.inc(3)
    metrics.closed(4321)
    metrics.closed(1006)
    metrics.refused(4001)
    metrics.refused(1001) // a socket closed by shutdown before its auth: not refused
    const after = await series(metrics)
    expect(after.get('belfry_deliveries_total')).toBe(5)
    expect(after.get('belfry_replayed_notifications_total')).toBe(3)
    expect(after.get('belfry_closes_total{code="other"}')).toBe(1)
    expect(after.get('belfry_closes_total{code="1006"}')).toBe(1)
    expect(after.get('belfry_auth_failures_total{reason="token_invalid"}')).toBe(1)
    expect([...after.keys()].filter((k) => k.startsWith('belfry_auth_failures_total') && after.get(k) !== 0)).toHaveLength(1)
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort())
  })
})
