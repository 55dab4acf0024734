/**
 * Shared pieces of the chaos suite: a seeded random source (the seed is
 * printed so a failing run can be replayed with CHAOS_SEED=<seed>), a forced
 * garbage collection for heap measurements, and a recorder for
 * NotificationClient events.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterAll, beforeAll } from 'vitest'
import WebSocket from 'ws'
import { type ClientOptions, memoryStorage, type Notification, NotificationClient, type StatusEvent } from '../../src/index.js'
import { type PgInstance, type RedisInstance, startPostgres, startRedis, stopAllServices } from '../helpers/services.js'

export interface Rng {
  seed: number
  /** Uniform in [0, 1). */
  next(): number
  /** Integer in [lo, hi], inclusive. */
  int(lo: number, hi: number): number
  pick<T>(items: readonly T[]): T
  /** `n` distinct items. */
  sample<T>(items: readonly T[], n: number): T[]
  chance(p: number): boolean
  bytes(n: number): Buffer
}

/** mulberry32: small, fast and good enough to drive a fuzzer reproducibly. */
export function rng(seed: number): Rng {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1))
  return {
    seed,
    next,
    int,
    pick: (items) => items[int(0, items.length - 1)]!,
    sample: (items, n) => {
      const copy = [...items]
      for (let i = copy.length - 1; i > 0; i--) {
        const j = int(0, i)
        ;[copy[i], copy[j]] = [copy[j]!, copy[i]!]
      }
      return copy.slice(0, n)
    },
    chance: (p) => next() < p,
    bytes(n) {
      const b = Buffer.allocUnsafe(n)
      for (let i = 0; i < n; i++) b[i] = int(0, 255)
      return b
    },
  }
}

/** The seed for one file: `env` (CHAOS_SEED) when set, else a fresh one. Printed either way, under `suite`. */
export function seedFor(name: string, env = 'CHAOS_SEED', suite = 'chaos'): Rng {
  const fromEnv = Number(process.env[env])
  const seed = Number.isSafeInteger(fromEnv) && fromEnv > 0 ? fromEnv : (Date.now() ^ (process.pid << 16)) >>> 0 || 1
  console.log(`[${suite}] ${name}: seed=${seed} (replay with ${env}=${seed})`)
  return rng(seed)
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Waits for `p`, failing after `ms` (a generous bound, not a timing assertion). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms)
  })
  return Promise.race([p, bound]).finally(() => clearTimeout(timer))
}

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** Heap in use after full collections: what is really retained. */
export async function retainedHeap(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc()
    await sleep(20)
  }
  return process.memoryUsage().heapUsed
}

export const MB = 1024 * 1024

/** A NotificationClient over Node's `ws`, with its own memory storage and a small backoff, and everything it emitted. */
export interface Recorded {
  client: NotificationClient
  notifications: Notification[]
  statuses: StatusEvent[]
  seqs(): number[]
}

export function recordedClient(options: Partial<ClientOptions> & Pick<ClientOptions, 'url' | 'token'>): Recorded {
  const client = new NotificationClient({
    WebSocket,
    storage: memoryStorage(),
    backoff: { initial: 50, max: 500 },
    ...options,
  })
  const r: Recorded = { client, notifications: [], statuses: [], seqs: () => r.notifications.map((n) => n.seq) }
  client.on('notification', (n) => r.notifications.push(n))
  client.on('status', (s) => r.statuses.push(s))
  return r
}

/** Strictly increasing: in order, and no notification handed to the app twice. */
export function strictlyIncreasing(seqs: readonly number[]): boolean {
  return seqs.every((s, i) => i === 0 || s > seqs[i - 1]!)
}

/** The integers from `from` to `to`, inclusive. */
export const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i)

/**
 * A PostgreSQL and a Redis of the calling file's own (its tests stop, cut or
 * slow them), started before its tests and stopped after them; read their
 * `db` and `redis` inside the tests.
 */
export function ownServices(): { readonly db: PgInstance; readonly redis: RedisInstance } {
  const services = {} as { db: PgInstance; redis: RedisInstance }
  beforeAll(async () => {
    services.db = await startPostgres()
    services.redis = await startRedis()
  }, 180_000)
  afterAll(() => stopAllServices())
  return services
}
