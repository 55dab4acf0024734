/**
 * A read of the store that a process makes for its connections, and that
 * fails (e.g. a PostgreSQL blip at that moment), is tried again at the next
 * sweep (once a second), not at the 30 s reconcile:
 * - the reconcile when the broker is back (for the events lost while it was away);
 * - the catch-up an idempotent replay asks for (its first attempt may have
 *   committed without being announced).
 * And a publish that failed in the store, which may have committed all the same
 * (its COMMIT went through, the reply was lost), is followed by such a read.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, expect, it } from 'vitest'
import { mintToken, NotificationServer, SqliteStore } from '../../src/server/index.js'
import { FlakyBroker } from '../helpers/flaky-broker.js'
import { rawClient } from '../helpers/server.js'

const SECRET = 'reconcile-secret-0123456789abcdef'
const API_KEY = 'reconcile-api-key-0123456789'

const cleanUp: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const step of cleanUp.splice(0).reverse()) await Promise.resolve(step()).catch(() => {})
})
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * A server on a SQLite store whose `latestSeqs` fails while `failure.on` is set, with ann connected;
 * `other` is "another process" on the same store (its publishes reach no broker of this process).
 */
async function setUp() {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-reconcile-'))
  cleanUp.push(() => rmSync(dir, { recursive: true, force: true }))
  const store = new SqliteStore(join(dir, 'belfry.db'))
  const other = new SqliteStore(join(dir, 'belfry.db'))
  cleanUp.push(() => other.close())
  const failure = { on: false }
  const latestSeqs = store.latestSeqs.bind(store)
  store.latestSeqs = (userIds) => (failure.on ? Promise.reject(new Error('the database is unavailable')) : latestSeqs(userIds))

  const broker = new FlakyBroker()
  const { ann, url } = await serveAnn(store, broker)
  return { other, broker, failure, ann, url }
}

/** A server on this store (and broker), with ann connected. */
async function serveAnn(store: SqliteStore, broker?: FlakyBroker) {
  const server = new NotificationServer({ secret: SECRET, apiKey: API_KEY, store, broker, logger: pino({ level: 'silent' }) })
  cleanUp.push(() => server.close())
  const { port } = await server.listen(0, '127.0.0.1')
  const ann = await rawClient(`ws://127.0.0.1:${port}/ws`)
  cleanUp.push(() => ann.close())
  ann.send({ type: 'auth', token: await mintToken(SECRET, 'ann'), since: 0 })
  await ann.next((f) => f.type === 'replayed' && f.more === false)
  return { server, ann, url: `http://127.0.0.1:${port}` }
}

it('a reconcile that fails when the broker is back is tried again at the next sweep, not 30 s later', async () => {
  const { other, broker, failure, ann } = await setUp()

  // The broker is lost; meanwhile another process publishes to ann. The broker comes back while the
  // store has a blip: the read made for what the broker lost fails. The store is fine a moment later.
  failure.on = true
  broker.down()
  await other.publish({ userIds: ['ann'] }, { title: 'lost by the broker', body: '' })
  broker.back()
  await sleep(100)
  failure.on = false

  // Next sweeps (once a second) read again: ann gets it within a few seconds.
  await sleep(3000)
  expect(ann.of('notification').map((f) => f.title)).toEqual(['lost by the broker'])
})

it("an idempotent replay's catch-up whose store read fails is tried again at the next sweep, not 30 s later", async () => {
  const { other, failure, ann, url } = await setUp()
  const notification = { title: 'committed, never announced', body: '' }
  // The key's first attempt committed on another process, which lost its answer before announcing it.
  await other.publish({ userIds: ['ann'] }, notification, { key: 'k-1', ttlMs: 60_000 })

  // The publisher retries here: the replay asks ann's connections to read the store, and that read fails.
  failure.on = true
  const res = await fetch(`${url}/api/notifications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}`, 'idempotency-key': 'k-1' },
    body: JSON.stringify({ userId: 'ann', ...notification }),
  })
  expect(res.status).toBe(201)
  expect(res.headers.get('idempotent-replayed')).toBe('true')
  await sleep(100)
  failure.on = false

  // Nothing else is published: only a read of the store at a next sweep gives it to ann.
  await sleep(3000)
  expect(ann.of('notification').map((f) => f.title)).toEqual(['committed, never announced'])
})

it("a publish that committed but whose answer from the store was lost reaches the recipient's connection at the next sweep", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-reconcile-'))
  cleanUp.push(() => rmSync(dir, { recursive: true, force: true }))
  const store = new SqliteStore(join(dir, 'belfry.db'))
  // The next publish commits, then fails as a lost COMMIT reply does (PostgreSQL's connection cut just then).
  const publish = store.publish.bind(store)
  let lose = 1
  store.publish = async (...args) => {
    const published = await publish(...args)
    if (lose-- > 0) throw new Error('Connection terminated unexpectedly')
    return published
  }
  const { server, ann } = await serveAnn(store)

  // Not acknowledged (the server cannot know it is durable), yet it is: the publisher's retry would be a replay.
  await expect(server.sendToUser('ann', { title: 'committed, reply lost', body: '' })).rejects.toThrow(/store failed/)
  // Nothing else is published: only a read of the store at a next sweep gives it to ann, not 30 s later.
  await sleep(3000)
  expect(ann.of('notification').map((f) => f.title)).toEqual(['committed, reply lost'])
})
