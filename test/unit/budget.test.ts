import { afterEach, describe, expect, it, vi } from 'vitest'
import { Budgets } from '../../src/server/budget.js'
import { DEFAULT_LIMITS } from '../../src/server/options.js'

afterEach(() => vi.useRealTimers())

describe('Budgets', () => {
  it('is shared by a user, and forgets a budget only once both its buckets are full again', () => {
    vi.useFakeTimers()
    const budgets = new Budgets({ ...DEFAULT_LIMITS, ratePerSecond: 10, rateBurst: 10, sendBytesPerSecond: 1000, sendBurstBytes: 1000 })
    const alice = budgets.of('alice')
    expect(budgets.of('alice')).toBe(alice)
    alice.frames.take()
    budgets.of('bob').bytes.charge(1500) // a debt: 1.5 s to refill
    budgets.of('carol') // untouched: full
    budgets.sweep()
    expect(budgets.size).toBe(2) // carol's is gone, whether or not she is connected
    vi.advanceTimersByTime(200)
    budgets.sweep()
    expect(budgets.size).toBe(1) // alice's frame refilled
    expect(budgets.of('bob').bytes.waitMs).toBeGreaterThan(0) // bob's debt stands
    vi.advanceTimersByTime(1500)
    budgets.sweep()
    expect(budgets.size).toBe(0)
    // A forgotten budget comes back full.
    expect(budgets.of('bob').bytes.waitMs).toBe(0)
    expect(budgets.of('bob').frames.full).toBe(true)
  })
})
