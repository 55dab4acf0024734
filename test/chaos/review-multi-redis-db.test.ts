/**
 * Review: two belfry deployments on one Redis server, each on its own Redis database
 * (redis://host:port/1 and /2, the usual way to share a Redis) and its own PostgreSQL
 * database. belfry-server has no setting for the broker's channel (the CLI passes none,
 * so both use 'belfry:events'), and Redis pub/sub ignores the database number: the
 * deployments hear each other's events.
 */
import { randomBytes } from 'node:crypto'
import { pino } from 'pino'
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import { PostgresStore, RedisBroker } from '../../src/server/index.js'
import { authedClient, httpPublish, startServer, type TestServer } from '../helpers/server.js'
import { type PgInstance, type RedisInstance, startPostgres, startRedis, stopAllServices } from '../helpers/services.js'
import { sleep } from './util.js'

let db: PgInstance
let redis: RedisInstance
beforeAll(async () => {
  db = await startPostgres()
  redis = await startRedis()
}, 180_000)
afterAll(() => stopAllServices())

const servers: TestServer[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await s.dispose().catch(() => {})
})

const logger = pino({ level: 'silent' })

/** A deployment as belfry-server builds it from BELFRY_DATABASE_URL and BELFRY_REDIS_URL (no channel option). */
async function deployment(redisDb: number): Promise<TestServer> {
  const schema = `d_${randomBytes(5).toString('hex')}`
  const s = await startServer({
    store: await PostgresStore.open(db.url, { schema }),
    broker: await RedisBroker.connect(`${redis.url}/${redisDb}`, { logger }),
  })
  servers.push(s)
  return s
}

it("a deployment on another Redis database never hands its notifications to this deployment's users", async () => {
  const staging = await deployment(1)
  const production = await deployment(2)
  const ann = await authedClient(production, 'ann')
  // Another deployment's user who happens to have the same id (user ids are the apps' own).
  for (const title of ['staging 1', 'staging 2', 'staging 3']) {
    expect((await httpPublish(staging.url, { userId: 'ann', title, body: 'for staging only' })).status).toBe(201)
  }
  expect((await httpPublish(production.url, { userId: 'ann', title: 'production 1', body: '' })).status).toBe(201)
  await sleep(1500)
  // Production's ann has one notification in her inbox: only that one may reach her, and it must.
  const got = ann.of('notification').map((f) => [f.seq, f.title])
  expect(got).toEqual([[1, 'production 1']])
  ann.close()
})
