import { afterEach, describe, expect, it, vi } from 'vitest'
import { fullJitter } from '../../../src/index.js'
import { advanceToAfterStatus, cleanup, connected, createClient, type Recorded, startMockServer, tick } from '../../helpers/mock-server.js'

afterEach(cleanup)

const DEFAULTS = { initial: 500, factor: 2, max: 30_000 }
const bound = (attempt: number) => Math.min(30_000, 500 * 2 ** attempt)

/** mulberry32: a small seeded PRNG, so a run is reproducible. */
function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('fullJitter', () => {
  it('draws from [0, min(max, initial × factor^attempt)) for attempts 0..10', () => {
    const random = seeded(42)
    for (let attempt = 0; attempt <= 10; attempt++) {
      for (let i = 0; i < 50; i++) {
        const d = fullJitter(attempt, DEFAULTS, random)
        expect(Number.isInteger(d)).toBe(true)
        expect(d).toBeGreaterThanOrEqual(0)
        expect(d).toBeLessThan(bound(attempt))
      }
    }
  })

  it('is 0 with random 0 and just under the bound with random 0.999: grows ×2, then caps at 30 s', () => {
    const low = Array.from({ length: 11 }, (_, attempt) => fullJitter(attempt, DEFAULTS, () => 0))
    const high = Array.from({ length: 11 }, (_, attempt) => fullJitter(attempt, DEFAULTS, () => 0.999))
    expect(low).toEqual(Array(11).fill(0))
    expect(high).toEqual([499, 999, 1998, 3996, 7992, 15984, 29970, 29970, 29970, 29970, 29970])
  })

  it('is a pure function of attempt and random', () => {
    const a = Array.from({ length: 11 }, (_, i) => fullJitter(i, DEFAULTS, seeded(7)))
    const b = Array.from({ length: 11 }, (_, i) => fullJitter(i, DEFAULTS, seeded(7)))
    expect(a).toEqual(b)
    expect(fullJitter(3, { initial: 100, factor: 3, max: 1000 }, () => 0.5)).toBe(500)
    expect(fullJitter(1, { initial: 100, factor: 3, max: 1000 }, () => 0.5)).toBe(150)
  })

  it('stays at the cap for huge attempts', () => {
    expect(fullJitter(5000, DEFAULTS, () => 0.5)).toBe(15_000)
  })

  it('uses Math.random by default', () => {
    const spy = vi.spyOn(Math, 'random').mockReturnValue(0.25)
    expect(fullJitter(2, DEFAULTS)).toBe(500)
    expect(spy).toHaveBeenCalledTimes(1)
  })
})

describe('client backoff', () => {
  /** Runs timer by timer until `count` retries were scheduled; returns each retry with when it was scheduled and when it ran. */
  async function retries(log: Recorded, count: number) {
    for (let i = 0; i < 10_000 && log.statuses.filter((s) => s.to === 'reconnecting').length < count + 1; i++) {
      await vi.advanceTimersToNextTimerAsync()
    }
    return log.statuses.flatMap((s, i) => {
      const next = log.statuses[i + 1]
      if (s.to !== 'reconnecting' || !next) return []
      return [
        { attempt: s.attempt, retryIn: s.retryIn, waited: (log.statusTimes[i + 1] ?? 0) - (log.statusTimes[i] ?? 0), next: next.reason },
      ]
    })
  }

  it('waits fullJitter(attempt) before each retry of repeated failures', async () => {
    vi.useFakeTimers()
    // Every connection is refused right after the auth frame.
    const server = startMockServer({ auth: (peer) => peer.close(1006) })
    const { client, log } = createClient(server, { random: seeded(1) })
    client.connect()
    const seen = await retries(log, 10)
    const expected = seeded(1)
    expect(seen).toEqual(
      Array.from({ length: 10 }, (_, i) => {
        const delay = fullJitter(i, DEFAULTS, expected)
        return { attempt: i + 1, retryIn: delay, waited: delay, next: 'retry' }
      }),
    )
    expect(server.peers.length).toBeGreaterThanOrEqual(10)
  })

  it('applies a backoff shape option', async () => {
    vi.useFakeTimers()
    const server = startMockServer({ auth: (peer) => peer.close(1006) })
    const { client, log } = createClient(server, { backoff: { initial: 100, factor: 3, max: 1000 } })
    client.connect()
    const seen = await retries(log, 4)
    expect(seen.map((r) => r.retryIn)).toEqual([50, 150, 450, 500])
    expect(seen.map((r) => r.waited)).toEqual([50, 150, 450, 500])
  })

  it('keeps counting attempts across drops before minUptime and resets after minUptime online', async () => {
    vi.useFakeTimers()
    const server = startMockServer()
    const attempts: number[] = []
    const t = createClient(server, {
      minUptime: 5000,
      backoff: (attempt) => {
        attempts.push(attempt)
        return 100
      },
    })
    const { client, log } = await connected(t)

    for (let i = 0; i < 3; i++) {
      await advanceToAfterStatus(log, 4000) // online, but not for minUptime
      server.peer.close(1006)
      await tick(100 + 20)
      expect(client.state).toBe('online')
    }
    expect(attempts).toEqual([0, 1, 2])
    expect(log.statuses.filter((s) => s.to === 'reconnecting').map((s) => s.attempt)).toEqual([1, 2, 3])

    await advanceToAfterStatus(log, 5000) // up for minUptime
    server.peer.close(1006)
    await tick()
    expect(attempts).toEqual([0, 1, 2, 0])
    expect(log.statuses.at(-1)).toMatchObject({ to: 'reconnecting', attempt: 1 })
  })

  // Regression: setTimeout takes a delay of 2^31 ms or more (Infinity too) and NaN for 1 ms: the retries spun.
  it.each([Number.POSITIVE_INFINITY, 2 ** 31, Number.NaN])('waits 2^31-1 ms, the longest, for a custom backoff’s %d', async (delay) => {
    vi.useFakeTimers()
    const server = startMockServer({ auth: (peer) => peer.close(4000) })
    const { client, log } = createClient(server, { backoff: () => delay })
    client.connect()
    await tick(1000)
    expect(log.statuses.filter((e) => e.to === 'reconnecting').map((e) => e.retryIn)).toEqual([2 ** 31 - 1])
    expect(server.peers).toHaveLength(1)
  })

  it('a custom backoff function replaces fullJitter', async () => {
    vi.useFakeTimers()
    const server = startMockServer({ auth: (peer) => peer.close(4000) })
    const random = vi.fn(() => 0.5)
    const { client, log } = createClient(server, { backoff: (attempt) => 1234 + attempt, random })
    client.connect()
    await tick()
    expect(log.statuses.at(-1)).toMatchObject({ to: 'reconnecting', retryIn: 1234 })
    await advanceToAfterStatus(log, 1233)
    expect(client.state).toBe('reconnecting')
    await advanceToAfterStatus(log, 1234)
    await tick()
    expect(log.statuses.at(-1)).toMatchObject({ to: 'reconnecting', retryIn: 1235 })
    expect(random).not.toHaveBeenCalled()
  })
})
