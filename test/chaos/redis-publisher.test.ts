/**
 * Review: a Redis broker whose publisher connection is lost while its
 * subscriber stays subscribed. Every publish of the process then fails at the
 * broker (delivered to its own connections only; the other processes' clients
 * wait for their 30 s reconcile), yet `broker.up` stays true: /healthz says
 * `ok` and `belfry_broker_up` says 1. Redis at its `maxclients` (another
 * client took the slot) keeps the publisher out for as long as it lasts.
 */
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import { PostgresStore, RedisBroker } from '../../src/server/index.js'
import { authedClient, httpPublish, type RawClient, startServer } from '../helpers/server.js'
import { type PgInstance, type RedisInstance, startPostgres, startRedis, stopAllServices } from '../helpers/services.js'
import { sleep } from './util.js'

let db: PgInstance
let redis: RedisInstance
beforeAll(async () => {
  db = await startPostgres()
  redis = await startRedis()
}, 180_000)
afterAll(() => stopAllServices())

const cleanUp: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const step of cleanUp.splice(0).reverse()) await Promise.resolve(step()).catch(() => {})
})

const logger = pino({ level: 'silent' })
const titles = (c: RawClient) => c.of('notification').map((f) => f.title)

it('a process whose Redis publisher connection is lost (its subscriber still subscribed) says ok on /healthz while its publishes miss the broker', async () => {
  const schema = `w_${randomBytes(5).toString('hex')}`
  const channel = `belfry:${schema}`
  const brokerA = await RedisBroker.connect(redis.url, { channel, logger })
  const a = await startServer({ store: await PostgresStore.open(db.url, { schema }), broker: brokerA })
  cleanUp.push(() => a.dispose())
  const b = await startServer({
    store: await PostgresStore.open(db.url, { schema }),
    broker: await RedisBroker.connect(redis.url, { channel, logger }),
  })
  cleanUp.push(() => b.dispose())
  const bob = await authedClient(b, 'bob')
  cleanUp.push(() => bob.ws.terminate())

  expect((await httpPublish(a.url, { userId: 'bob', title: 'before', body: '' })).status).toBe(201)
  await expect.poll(() => titles(bob), { timeout: 2000 }).toEqual(['before'])

  // Redis is full (maxclients): the publisher connections, once dropped, cannot come back.
  const admin = new Redis(redis.url)
  cleanUp.push(async () => {
    await admin.config('SET', 'maxclients', '10000')
    admin.disconnect()
  })
  const connected = Number(/connected_clients:(\d+)/.exec(await admin.info('clients'))![1])
  await admin.config('SET', 'maxclients', String(connected - 2))
  // Only the non-pubsub connections: the publishers (the subscribers stay subscribed).
  await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
  await sleep(1500)

  const published = await httpPublish(a.url, { userId: 'bob', title: 'after', body: '' })
  expect(published.status).toBe(201)
  // The publish did not reach Redis (A's publisher is not connected): bob, on B, does not get it from the broker.
  await sleep(2000)
  expect(titles(bob)).toEqual(['before'])

  // A's publishes fall back to the store for every other process: the broker is as good as lost for them.
  const health = (await (await fetch(`${a.url}/healthz`)).json()) as { status: string }
  // (brokerA.up is still true: only the subscriber's losses count.)
  expect(health.status).toBe('degraded')
})
