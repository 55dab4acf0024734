/**
 * Review: a subscribe that meets a store outage while the client stays online.
 *
 * The server answers the topics frame (sent without a requestId) with an `internal` error and
 * records nothing; the client keeps the topic as subscribed and sends it again only after its
 * next auth. Once the database is back, the client is still online, believes it follows the topic,
 * and the topic's publishes (201, 0 recipients) never reach it.
 */
import pg from 'pg'
import { pino } from 'pino'
import WebSocket from 'ws'
import { afterEach, expect, it } from 'vitest'
import { type BelfryError, memoryStorage, type Notification, NotificationClient } from '../../src/index.js'
import { PostgresStore } from '../../src/server/index.js'
import { httpPublish, startServer, type TestServer } from '../helpers/server.js'
import { type PgInstance, startPostgres, stopAllServices } from '../helpers/services.js'

const cleanUp: (() => unknown)[] = []
afterEach(async () => {
  for (const step of cleanUp.splice(0).reverse()) await Promise.resolve(step()).catch(() => {})
  await stopAllServices()
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

it('a topic subscribed while PostgreSQL is briefly down is subscribed once it is back (the client stayed online)', async () => {
  const pgi: PgInstance = await startPostgres()
  const t: TestServer = await startServer({
    store: await PostgresStore.open(pgi.url, { connectTimeoutMs: 1000, queryTimeoutMs: 1000 }),
    logger: pino({ level: 'silent' }),
  })
  cleanUp.push(() => t.dispose())
  const client = new NotificationClient({
    url: t.wsUrl,
    token: () => t.token('ann'),
    WebSocket,
    storage: memoryStorage(),
    backoff: { initial: 50, max: 500 },
    watchNetwork: false,
  })
  cleanUp.push(() => client.close())
  const notes: Notification[] = []
  const errors: BelfryError[] = []
  const states: string[] = []
  client.on('notification', (n) => notes.push(n))
  client.on('error', (e) => errors.push(e))
  client.on('status', (s) => states.push(s.to))
  client.connect()
  await client.ready({ timeout: 10_000 })
  states.length = 0

  // PostgreSQL goes away for a moment; meanwhile the app subscribes.
  await pgi.stop()
  client.subscribe('deploys')
  // The store fails the subscribe at once (connection refused); today the client hears an `internal` error.
  await Promise.race([expect.poll(() => errors.length + states.length, { timeout: 5000 }).toBeGreaterThan(0), sleep(2000)])
  await pgi.start()
  // The server takes publishes again.
  await expect
    .poll(async () => (await httpPublish(t.url, { userId: 'bob', title: 'probe', body: '' })).status, { timeout: 15_000, interval: 200 })
    .toBe(201)

  // The client never left `online`, and still holds 'deploys' as subscribed: a publish to it must reach it.
  let published = 0
  const deadline = Date.now() + 8000
  while (!notes.some((n) => n.topic === 'deploys') && Date.now() < deadline) {
    const res = await httpPublish(t.url, { topic: 'deploys', title: `deploy ${published++}`, body: '' })
    expect(res.status).toBe(201)
    await sleep(500)
  }
  const db = new pg.Client(pgi.url)
  await db.connect()
  const { rows } = await db.query("SELECT count(*)::int AS n FROM belfry.subscriptions WHERE topic = 'deploys'")
  await db.end()
  const got = notes.filter((n) => n.topic === 'deploys').length
  expect(
    { subscribers: rows[0].n, delivered: got > 0 },
    `${published} publishes to the topic after the outage; client states since: [${states.join(', ')}]; errors: ${errors.map((e) => e.message).join('; ')}`,
  ).toEqual({ subscribers: 1, delivered: true })
}, 40_000)
