/**
 * Two belfry deployments on one Redis server (staging and production, say), each with its own
 * PostgreSQL schema, as belfry-server builds them: the broker's default channel, 'belfry:events'.
 * Redis pub/sub ignores the database number, so a deployment on redis://host/1 and one on
 * redis://host/2 (or both on the same number) hear each other's events. Those name users by bare
 * id and seq; each server drops the events stamped with another store's deployment token, so no
 * user gets another deployment's notifications (a leak), nor has its own held back as already sent
 * because the other's seqs went past them.
 */
import { randomBytes } from 'node:crypto'
import { pino } from 'pino'
import { afterEach, expect, it } from 'vitest'
import { PostgresStore, RedisBroker } from '../../src/server/index.js'
import { authedClient, httpPublish, startServer, type TestServer } from '../helpers/server.js'
import { ownServices, sleep } from './util.js'

// This file's own: its tests cut and slow them.
const services = ownServices()

const servers: TestServer[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await s.dispose().catch(() => {})
})

const silent = pino({ level: 'silent' })

/** A deployment as belfry-server builds it from BELFRY_DATABASE_URL and BELFRY_REDIS_URL (no channel option); its warnings in `warnings`. */
async function deployment(redisDb: number): Promise<TestServer & { warnings: Record<string, unknown>[] }> {
  const schema = `d_${randomBytes(5).toString('hex')}`
  const warnings: Record<string, unknown>[] = []
  const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line)) })
  const s = await startServer({
    store: await PostgresStore.open(services.db.url, { schema }),
    broker: await RedisBroker.connect(`${services.redis.url}/${redisDb}`, { logger: silent }),
    logger,
  })
  servers.push(s)
  return Object.assign(s, { warnings })
}

it.each([
  ['on two database numbers of one Redis', 1, 2],
  ['on the same Redis database', 0, 0],
])("two deployments %s never hand each other's notifications or read changes to their users", async (_, stagingDb, productionDb) => {
  const staging = await deployment(stagingDb)
  const production = await deployment(productionDb)
  // Each deployment's own ann (user ids are the apps' own, and alike).
  const ann = await authedClient(production, 'ann')
  const stagingAnn = await authedClient(staging, 'ann')
  for (const title of ['staging 1', 'staging 2', 'staging 3']) {
    expect((await httpPublish(staging.url, { userId: 'ann', title, body: 'for staging only' })).status).toBe(201)
  }
  expect((await httpPublish(production.url, { userId: 'ann', title: 'production 1', body: '' })).status).toBe(201)
  await stagingAnn.next((f) => f.type === 'notification' && f.seq === 3)
  stagingAnn.send({ type: 'mark_read', all: true, requestId: 'r1' })
  await stagingAnn.next((f) => f.type === 'read' && f.requestId === 'r1')
  await sleep(1500)
  // Production's ann has one notification in her inbox: only that one may reach her, and it must.
  expect(ann.of('notification').map((f) => [f.seq, f.title])).toEqual([[1, 'production 1']])
  expect(ann.of('read')).toEqual([])
  expect(stagingAnn.of('notification').map((f) => [f.seq, f.title])).toEqual([
    [1, 'staging 1'],
    [2, 'staging 2'],
    [3, 'staging 3'],
  ])
  // Each says once (not once per event) that another deployment shares its channel.
  for (const s of [production, staging]) {
    const told = s.warnings.filter((w) => String(w.msg).includes('another deployment'))
    expect(told).toHaveLength(1)
    expect(told[0]).toMatchObject({ dropped: 1, level: 40 })
  }
  ann.close()
  stagingAnn.close()
})
