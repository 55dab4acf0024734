/**
 * Read state across processes under load (NotificationServer's reads of a user's state): races in
 * which a socket's unread count could end other than the store's, or a read change be held back.
 * Three servers in this test process (A, B, C) on one PostgreSQL schema and one Redis channel, as
 * in read-order.test.ts. The observer is a NotificationClient on C.
 */
import { randomBytes } from 'node:crypto'
import { pino } from 'pino'
import { afterAll, beforeAll, expect, inject, it } from 'vitest'
import { NotificationServer, PostgresStore, RedisBroker } from '../../src/server/index.js'
import { API_KEY, closeTabs, openTab, SECRET, sleep, type Tab, until } from './harness.js'

interface Node {
  server: NotificationServer
  store: PostgresStore
  url: string
}

const schema = `rr_${randomBytes(5).toString('hex')}`
const channel = `belfry:read-review:${randomBytes(5).toString('hex')}`
let A: Node
let B: Node
let C: Node
/** The test's own view of the store. */
let db: PostgresStore
const tabs: Tab[] = []

async function startNode(): Promise<Node> {
  const { pgUrl, redisUrl } = inject('cluster')
  const logger = pino({ level: 'silent' })
  const store = await PostgresStore.open(pgUrl, { schema, poolSize: 2 })
  const broker = await RedisBroker.connect(redisUrl, { channel, logger })
  const server = new NotificationServer({ secret: SECRET, apiKey: API_KEY, store, broker, logger })
  const { port } = await server.listen(0, '127.0.0.1')
  return { server, store, url: `ws://127.0.0.1:${port}/ws` }
}

beforeAll(async () => {
  A = await startNode()
  B = await startNode()
  C = await startNode()
  db = await PostgresStore.open(inject('cluster').pgUrl, { schema, poolSize: 1 })
})

afterAll(async () => {
  closeTabs(tabs)
  await Promise.all([A, B, C].map((n) => n?.server.close()))
  await db?.close()
})

async function tab(node: Node, user: string): Promise<Tab> {
  const t = openTab(node.url, user)
  tabs.push(t)
  await t.client.ready({ timeout: 10_000 })
  return t
}

/** Publishes on `node` and waits until each tab has it. */
async function publish(node: Node, user: string, title: string, ...tabs: Tab[]): Promise<string> {
  const { id } = await node.server.sendToUser(user, { title, body: '' })
  await until(() => tabs.every((t) => t.notes.some((n) => n.id === id)), 5000, `${user} gets ${title}`)
  return id
}

it('a read state told after reads made stale by a stream of publishes still ends on the store’s count', async () => {
  // A user who gets notifications steadily: each of C's reads of her state is overtaken by one more
  // notification sent to the observer while the read is in flight (the read is "stale").
  const observer = await tab(C, 'r1')
  const onB = await tab(B, 'r1')
  const one = await publish(B, 'r1', 'one', observer, onB)
  const user = C.store.user
  let reads = 0
  C.store.user = async (userId) => {
    const state = await user.call(C.store, userId)
    reads++
    // More than STALE_READS: the stream outlasts the re-reads.
    if (reads <= 8) await publish(B, 'r1', `during read ${reads}`, observer, onB)
    return state
  }
  try {
    await onB.client.markRead(one)
    await until(() => observer.reads.length >= 1, 5000, 'the observer hears the read change')
    await sleep(200)
  } finally {
    C.store.user = user
  }
  const store = (await db.user('r1'))!.unreadCount
  // The observer was sent every one published during a read (it counted them); the count it was
  // told must not take any back.
  expect(observer.notes).toHaveLength(1 + Math.min(reads, 8))
  expect(store).toBe(Math.min(reads, 8))
  expect(observer.client.unreadCount).toBe(store)
})

it('read changes arriving during every read do not hold the frames back for ever (at most five reads)', async () => {
  // Another device of the user marks one notification read while each of C's reads is in flight.
  const observer = await tab(C, 'r2')
  const onB = await tab(B, 'r2')
  const ids: string[] = []
  for (let i = 0; i < 12; i++) ids.push(await publish(B, 'r2', `n${i}`, observer, onB))
  const user = C.store.user
  let reads = 0
  /** What the observer had heard when each read began. */
  const heardAt: number[] = []
  C.store.user = async (userId) => {
    heardAt.push(observer.reads.length)
    const state = await user.call(C.store, userId)
    reads++
    if (reads < 10) {
      await onB.client.markRead(ids[reads]!)
      await sleep(50) // its event reaches C while this read is in flight
    }
    return state
  }
  try {
    await onB.client.markRead(ids[0]!)
    await until(() => reads >= 10, 10_000, 'ten reads')
    await until(() => observer.reads.length >= 1, 5000, 'the observer hears the read changes')
    await sleep(150)
  } finally {
    C.store.user = user
  }
  // Eventually right…
  expect(observer.client.unreadCount).toBe((await db.user('r2'))!.unreadCount)
  // …but the observer must have been told something by the seventh read (STALE_READS = 5 bounds
  // stale reads; a stream of read changes should be bounded as well).
  expect(heardAt[6]).toBeGreaterThan(0)
})

it('the connection that made a change ends on the store’s count when a later notification reached it before its reply', async () => {
  // The marker's own reply carries the count its change committed with. A notification committed
  // after it (on B) reaches the marker's socket (on C) before that reply is written: the marker
  // counts it, then the reply takes it back, and the change's broker event skips its origin.
  const marker = await tab(C, 'r3')
  const onB = await tab(B, 'r3')
  const one = await publish(B, 'r3', 'one', marker, onB)
  const markRead = C.store.markRead
  C.store.markRead = async (userId, ids) => {
    C.store.markRead = markRead
    const change = await markRead.call(C.store, userId, ids)
    await publish(B, 'r3', 'two', marker, onB) // committed after the change, sent before its reply
    return change
  }
  await marker.client.markRead(one)
  await sleep(300)
  const store = (await db.user('r3'))!.unreadCount
  expect(store).toBe(1)
  expect(marker.client.unreadCount).toBe(store)
})
