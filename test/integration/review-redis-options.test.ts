/**
 * Review: `RedisBroker.connect(url, { channel, logger, connectTimeout })` checks none of its options,
 * where `PostgresStore.open` and `NotificationServer` check theirs with a TypeError that names the option.
 * - A `logger` without pino's methods: connect opens both connections, subscribes, then throws the
 *   engine's "log.info is not a function" and leaves both connections open (its documented promise:
 *   "without leaving connections or timers behind").
 * - A `connectTimeout` that is no delay (NaN, -1, 0, "5000", past setTimeout's 2^31-1 ms) fails a Redis
 *   that answers at once with "no answer within NaN ms" (2^31 ms: setTimeout takes it as 1 ms).
 * - A `channel` that is no string is subscribed to as its String(): `{}` is "[object Object]".
 */
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { RedisBroker } from '../../src/server/broker/redis.js'
import { type RedisInstance, startRedis } from '../helpers/services.js'

const silent = pino({ level: 'silent' })

let redis: RedisInstance
let watcher: Redis
beforeAll(async () => {
  redis = await startRedis()
  watcher = new Redis(redis.url)
}, 180_000)
afterAll(async () => {
  watcher?.disconnect()
  await redis?.dispose()
})

/** Connections Redis has open, the watcher's own included. */
const clients = async () =>
  String(await watcher.call('CLIENT', 'LIST'))
    .trim()
    .split('\n').length

describe('RedisBroker.connect: a bad option is a TypeError that names it', () => {
  it('refuses a logger without pino’s methods, naming it, and leaves no connection open', async () => {
    expect(await clients()).toBe(1)
    const error = await RedisBroker.connect(redis.url, { logger: {} as never }).then(
      (broker) => broker,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(TypeError)
    expect((error as Error).message).toMatch(/logger/)
    // Whatever it opened is closed again (only the watcher is left).
    await vi.waitFor(async () => expect(await clients()).toBe(1), { timeout: 5000 })
  })

  it('refuses a connectTimeout that is no delay in setTimeout’s range, naming it (not "no answer within NaN ms")', async () => {
    for (const connectTimeout of [Number.NaN, -1, 0, 2 ** 31, '5000']) {
      const outcome = await RedisBroker.connect(redis.url, { logger: silent, connectTimeout: connectTimeout as number }).then(
        async (broker) => {
          await broker.close()
          return 'connected'
        },
        (e: unknown) => e,
      )
      expect(outcome, `connectTimeout ${String(connectTimeout)}`).toBeInstanceOf(TypeError)
      expect((outcome as Error).message).toMatch(/connectTimeout/)
    }
    // A good one connects.
    const broker = await RedisBroker.connect(redis.url, { logger: silent, connectTimeout: 5000 })
    await broker.close()
  })

  it('refuses a channel that is no string, naming it (an object would be the channel "[object Object]")', async () => {
    const outcome = await RedisBroker.connect(redis.url, { logger: silent, channel: {} as never }).then(
      async (broker) => {
        await broker.close()
        return 'connected'
      },
      (e: unknown) => e,
    )
    expect(outcome).toBeInstanceOf(TypeError)
    expect((outcome as Error).message).toMatch(/channel/)
  })
})
