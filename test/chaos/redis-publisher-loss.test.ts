/**
 * A Redis broker whose publisher connection is lost while its subscriber
 * stays subscribed. Every publish of the process then fails at the broker
 * (delivered to its own connections only; the other processes' clients wait
 * for their 30 s read of the store), so the broker counts as down: `up` and
 * `onStatus` say false, /healthz says `degraded` (and `belfry_broker_up` 0)
 * until the publisher is connected again. Redis at its `maxclients` (another
 * client took the slot) keeps the publisher out for as long as it lasts.
 */
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { afterEach, expect, it } from 'vitest'
import { PostgresStore, RedisBroker } from '../../src/server/index.js'
import { authedClient, httpPublish, type RawClient, startServer, type TestServer } from '../helpers/server.js'
import { ownServices, sleep } from './util.js'

// This file's own: its tests cut and slow them.
const services = ownServices()

const cleanUp: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const step of cleanUp.splice(0).reverse()) await Promise.resolve(step()).catch(() => {})
})

const logger = pino({ level: 'silent' })
const titles = (c: RawClient) => c.of('notification').map((f) => f.title)
const health = async (s: TestServer) => ((await (await fetch(`${s.url}/healthz`)).json()) as { status: string }).status

it('a process whose Redis publisher connection is lost (its subscriber still subscribed) says degraded on /healthz until the publisher is back', async () => {
  const schema = `w_${randomBytes(5).toString('hex')}`
  const channel = `belfry:${schema}`
  const admin = new Redis(services.redis.url)
  cleanUp.push(async () => {
    await admin.config('SET', 'maxclients', '10000')
    admin.disconnect()
  })
  const normal = async () =>
    [...((await admin.call('CLIENT', 'LIST', 'TYPE', 'normal')) as string).matchAll(/^id=(\d+)/gm)].map((m) => m[1]!)
  const others = await normal()
  const brokerA = await RedisBroker.connect(services.redis.url, { channel, logger })
  // A's publisher: the one normal connection A made (its subscriber is in subscribe mode).
  const publisherA = (await normal()).filter((id) => !others.includes(id))
  expect(publisherA).toHaveLength(1)
  const statuses: boolean[] = []
  brokerA.onStatus((up) => statuses.push(up))
  const a = await startServer({ store: await PostgresStore.open(services.db.url, { schema }), broker: brokerA })
  cleanUp.push(() => a.dispose())
  const b = await startServer({
    store: await PostgresStore.open(services.db.url, { schema }),
    broker: await RedisBroker.connect(services.redis.url, { channel, logger }),
  })
  cleanUp.push(() => b.dispose())
  const bob = await authedClient(b, 'bob')
  cleanUp.push(() => bob.ws.terminate())

  expect((await httpPublish(a.url, { userId: 'bob', title: 'before', body: '' })).status).toBe(201)
  await expect.poll(() => titles(bob), { timeout: 2000 }).toEqual(['before'])

  // Redis is full (maxclients): A's publisher connection, once dropped, cannot come back. Its subscriber, and
  // B's connections, stay.
  const connected = Number(/connected_clients:(\d+)/.exec(await admin.info('clients'))![1])
  await admin.config('SET', 'maxclients', String(connected - 1))
  await admin.client('KILL', 'ID', publisherA[0]!)
  await sleep(1500)

  const published = await httpPublish(a.url, { userId: 'bob', title: 'after', body: '' })
  expect(published.status).toBe(201)
  // The publish did not reach Redis (A's publisher is not connected): bob, on B, does not get it from the broker.
  await sleep(2000)
  expect(titles(bob)).toEqual(['before'])
  expect(await health(b)).toBe('ok')

  // A's publishes fall back to the store for every other process: the broker is as good as lost for them.
  expect(await health(a)).toBe('degraded')
  expect({ up: brokerA.up, statuses }).toEqual({ up: false, statuses: [false] })

  // Room again in Redis: the publisher reconnects (the subscriber never left), and the broker is up.
  await admin.config('SET', 'maxclients', '10000')
  await expect.poll(() => brokerA.up, { timeout: 10_000 }).toBe(true)
  expect(statuses).toEqual([false, true])
  expect(await health(a)).toBe('ok')
  // A tells the other processes that it published without the broker: B reads the store for bob now, not
  // at its 30 s reconcile, nor only once something newer shows bob a gap.
  await expect.poll(() => titles(bob), { timeout: 5000 }).toEqual(['before', 'after'])
  expect((await httpPublish(a.url, { userId: 'bob', title: 'back', body: '' })).status).toBe(201)
  await expect.poll(() => titles(bob), { timeout: 2000 }).toEqual(['before', 'after', 'back'])
})
