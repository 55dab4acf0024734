import { pino } from 'pino'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { PRUNE_INTERVAL_MS, Pruner, retentionRule } from '../../src/server/retention.js'
import type { PruneBatch, RetentionRule, Store } from '../../src/server/store/store.js'

/** A store whose prune answers `batches` in turn (an Error is thrown), recording each call. */
function fakeStore(batches: (Partial<PruneBatch> | Error)[]) {
  const calls: { rule: RetentionRule; after: number }[] = []
  let i = 0
  const store = {
    prune: vi.fn(async (rule: RetentionRule, after: number): Promise<PruneBatch> => {
      calls.push({ rule, after })
      const b = batches[i++ % batches.length]!
      if (b instanceof Error) throw b
      return { removed: 0, unread: 0, users: 0, notifications: 0, next: undefined, ...b }
    }),
  }
  return { store: store as unknown as Store, calls }
}

/** A logger that keeps what it is given. */
function logs() {
  const lines: Record<string, unknown>[] = []
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) })
  return { log, lines }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('retentionRule', () => {
  it('turns days into a time before which entries go, and keeps maxPerUser', () => {
    const now = Date.parse('2026-03-10T12:00:00.000Z')
    expect(retentionRule({ days: 7 }, now)).toEqual({ before: '2026-03-03T12:00:00.000Z' })
    expect(retentionRule({ days: 0.5, maxPerUser: 100 }, now)).toEqual({ before: '2026-03-10T00:00:00.000Z', maxPerUser: 100 })
    expect(retentionRule({ maxPerUser: 3 }, now)).toEqual({ maxPerUser: 3 })
  })
})

describe('Pruner', () => {
  it('runs a pass batch after batch, each from where the last said, with a turn for the event loop between two', async () => {
    const { store, calls } = fakeStore([
      { removed: 5, unread: 2, users: 1, notifications: 4, next: 10 },
      { removed: 3, unread: 3, users: 2, notifications: 3, next: 20 },
      { removed: 0, next: undefined },
    ])
    const { log, lines } = logs()
    const pruner = new Pruner(store, { maxPerUser: 2 }, log)
    // Something waiting on the event loop runs before the pass ends: the pass does not hold the loop.
    let ranBetween = false
    const pass = pruner.run()
    setImmediate(() => {
      ranBetween = calls.length < 3
    })
    expect(await pass).toEqual({ removed: 8, unread: 5, users: 3, notifications: 7 })
    expect(ranBetween).toBe(true)
    expect(calls).toEqual([
      { rule: { maxPerUser: 2 }, after: 0 },
      { rule: { maxPerUser: 2 }, after: 10 },
      { rule: { maxPerUser: 2 }, after: 20 },
    ])
    expect(lines).toEqual([expect.objectContaining({ msg: 'retention: pruned', removed: 8, rule: { maxPerUser: 2 } })])
    // The rule of a request, not the configured one.
    await pruner.run({ days: 1 })
    expect(calls.at(-1)!.rule).toEqual({ before: expect.any(String) })
    await pruner.close()
  })

  it('runs one pass at a time: one asked for during another follows it', async () => {
    const order: string[] = []
    let release: () => void = () => {}
    const store = {
      prune: vi.fn(async (rule: RetentionRule): Promise<PruneBatch> => {
        order.push(`start ${rule.maxPerUser}`)
        if (rule.maxPerUser === 1) await new Promise<void>((r) => (release = r))
        order.push(`end ${rule.maxPerUser}`)
        return { removed: 0, unread: 0, users: 0, notifications: 0, next: undefined }
      }),
    } as unknown as Store
    const pruner = new Pruner(store, undefined, pino({ level: 'silent' }))
    const first = pruner.run({ maxPerUser: 1 })
    const second = pruner.run({ maxPerUser: 2 })
    await new Promise((r) => setTimeout(r, 20))
    expect(order).toEqual(['start 1'])
    release()
    await Promise.all([first, second])
    expect(order).toEqual(['start 1', 'end 1', 'start 2', 'end 2'])
  })

  it('runs at start and every interval, logs a failed pass and carries on, and stops on close', async () => {
    vi.useFakeTimers()
    const { store, calls } = fakeStore([new Error('disk I/O error'), { removed: 1, users: 1 }])
    const { log, lines } = logs()
    const pruner = new Pruner(store, { maxPerUser: 5 }, log)
    pruner.start()
    await vi.advanceTimersByTimeAsync(10)
    expect(calls).toHaveLength(1)
    expect(lines).toEqual([expect.objectContaining({ level: 50, msg: 'retention pass failed; retrying on the next one' })])
    await vi.advanceTimersByTimeAsync(PRUNE_INTERVAL_MS + 10)
    expect(calls).toHaveLength(2)
    expect(lines.at(-1)).toMatchObject({ msg: 'retention: pruned', removed: 1 })
    await pruner.close()
    await vi.advanceTimersByTimeAsync(3 * PRUNE_INTERVAL_MS)
    expect(calls).toHaveLength(2)
    // Closed: a pass asked for now removes nothing and touches no store.
    expect(await pruner.run()).toEqual({ removed: 0, unread: 0, users: 0, notifications: 0 })
    expect(calls).toHaveLength(2)
  })

  it('never runs without a retention, and a pass in progress stops at its next batch on close', async () => {
    vi.useFakeTimers()
    const idle = fakeStore([{}])
    const none = new Pruner(idle.store, undefined, pino({ level: 'silent' }))
    none.start()
    await vi.advanceTimersByTimeAsync(2 * PRUNE_INTERVAL_MS)
    expect(idle.calls).toEqual([])
    await none.close()
    const busy = fakeStore([{ removed: 1, next: 1 }])
    const pruner = new Pruner(busy.store, { maxPerUser: 1 }, pino({ level: 'silent' }))
    const pass = pruner.run()
    await vi.advanceTimersByTimeAsync(20)
    const closed = pruner.close()
    await vi.advanceTimersByTimeAsync(20)
    await closed
    const made = busy.calls.length
    expect(made).toBeGreaterThan(0)
    await pass
    await vi.advanceTimersByTimeAsync(100)
    expect(busy.calls).toHaveLength(made)
  })
})
