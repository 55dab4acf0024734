/**
 * The cluster's Redis fails in the middle of a stream of publishes: it
 * crashes and comes back (kill -9, start), or Redis cuts every subscriber
 * connection (`CLIENT KILL TYPE pubsub`). Publishes stay acknowledged; the
 * processes read the store for what the broker lost; every client ends with
 * its user's inbox, once each, in order.
 */
import { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type RedisInstance, startRedis, stopAllServices } from '../helpers/services.js'
import {
  type Cluster,
  closeTabs,
  expectAckedDelivered,
  expectAckedStored,
  expectEveryTabHasItsInbox,
  health,
  openTabs,
  scenario,
  seeded,
  startCluster,
  subscribeAll,
  type Tab,
  until,
} from './harness.js'

// This file's own Redis: it is killed and cut off here.
let redis: RedisInstance
let cluster: Cluster | undefined
let tabs: Tab[] = []

/** This deployment's channel (BELFRY_REDIS_CHANNEL), as two deployments on one Redis server need. */
const CHANNEL = 'belfry:cluster-redis-test'
const USERS = Array.from({ length: 50 }, (_, i) => `u${String(i).padStart(2, '0')}`)
const TOPICS = { odd: USERS.filter((_, i) => i % 2 === 1), tens: USERS.filter((_, i) => i % 10 === 0) }

// One cluster and its clients for both tests: the second goes on from where the first left them.
// (CLIENT KILL first, on a cluster a few seconds old: its processes' 30 s reconcile, which would hide a
// missing read of the store after the loss, is not due during its checkpoint.)
beforeAll(async () => {
  redis = await startRedis()
  cluster = await startCluster({ redisUrl: redis.url, channel: CHANNEL })
  tabs = await openTabs(cluster.wsUrl, USERS, 3)
  await subscribeAll(cluster, TOPICS)
})
afterAll(async () => {
  closeTabs(tabs)
  await cluster?.stop()
  await stopAllServices()
})

it('subscribes every process on the channel BELFRY_REDIS_CHANNEL names, none on the default', async () => {
  const admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await admin.connect()
  try {
    expect(await admin.pubsub('NUMSUB', CHANNEL, 'belfry:events')).toEqual([CHANNEL, 3, 'belfry:events', 0])
  } finally {
    admin.disconnect()
  }
})

it('CLIENT KILL TYPE pubsub mid-stream: the processes subscribe again and read the store; nothing lost or doubled', async () => {
  const r = seeded('client kill pubsub')
  const c = cluster!
  const admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await admin.connect()
  try {
    const sent = await scenario(c, tabs, r, {
      users: USERS,
      topics: Object.keys(TOPICS),
      before: 40,
      after: 40,
      checkpoint: 10_000,
      chaos: async (pause) => {
        // One subscriber connection per process.
        expect(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')).toBe(3)
        // The stream's last publishes fall while no process is subscribed (they subscribe again within some
        // 100 ms): Redis hands them to nobody, and no later one shows their recipients a gap.
        await new Promise((resolve) => setTimeout(resolve, 30))
        await pause()
        await until(
          async () => ((await admin.call('PUBSUB', 'NUMSUB', CHANNEL)) as [string, number])[1] === 3,
          20_000,
          'every process subscribed again',
        )
      },
    })
    expect(sent.filter((s) => s.status !== 201)).toEqual([])
    await expectAckedStored(c, sent)
    const inbox = await expectEveryTabHasItsInbox(c, tabs)
    expectAckedDelivered(tabs, sent, inbox)
  } finally {
    admin.disconnect()
  }
})

it('Redis killed and restarted mid-stream: publishes stay acknowledged, nothing lost or doubled', async () => {
  const r = seeded('redis restart')
  const c = cluster!
  const sent = await scenario(c, tabs, r, {
    users: USERS,
    topics: Object.keys(TOPICS),
    before: 40,
    after: 40,
    checkpoint: 10_000,
    chaos: async (pause) => {
      await redis.kill()
      // Down: every process says so, and still takes publishes (the stream goes on).
      await until(
        async () => (await Promise.all(c.nodes.map(health))).every((h) => h.status === 200 && h.body.status === 'degraded'),
        10_000,
        'every process reports degraded',
      )
      await new Promise((resolve) => setTimeout(resolve, 500))
      // The last publishes of the stream while Redis is down: no later one shows their recipients a gap.
      await pause()
      await redis.start()
      await until(
        async () => (await Promise.all(c.nodes.map(health))).every((h) => h.body.status === 'ok'),
        20_000,
        'every process back to ok',
      )
    },
  })
  expect(sent.filter((s) => s.status !== 201)).toEqual([])
  await expectAckedStored(c, sent)
  const inbox = await expectEveryTabHasItsInbox(c, tabs)
  expectAckedDelivered(tabs, sent, inbox)
})
