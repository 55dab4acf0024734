/**
 * Review of the late-read record (NotificationServer's #toldRead, d1dd10a): "for 30 s after it tells
 * a user's connections of read changes, a process remembers what they made read (up to a read
 * {all}'s seq, and up to 1,000 ids) and marks a live notification of the user that it covers as
 * read" (docs/protocol.md, "Read state across processes"). Three servers in this test process (A,
 * B, C) on one PostgreSQL schema and one Redis channel, as in read-order.test.ts; A's broker can be
 * gated. The observer is a NotificationClient on C.
 */
import { randomBytes } from 'node:crypto'
import { pino } from 'pino'
import { afterAll, beforeAll, expect, inject, it, vi } from 'vitest'
import type { BrokerEvent } from '../../src/server/index.js'
import { NotificationServer, PostgresStore, RedisBroker } from '../../src/server/index.js'
import { API_KEY, closeTabs, openTab, SECRET, sleep, type Tab, until } from './harness.js'

interface Gate {
  hold(): void
  holding(count?: number): Promise<void>
  release(): Promise<void>
}

function gate(broker: RedisBroker): Gate {
  const publish = broker.publish.bind(broker)
  let held: { events: readonly BrokerEvent[]; go: () => void }[] | undefined
  broker.publish = async (events) => {
    if (held) await new Promise<void>((go) => held!.push({ events, go }))
    return publish(events)
  }
  return {
    hold: () => {
      held = []
    },
    holding: (count = 1) => until(() => (held?.length ?? 0) >= count, 5000, `${count} publishes held`),
    async release() {
      const waiting = held ?? []
      held = undefined
      for (const { go } of waiting) go()
      await sleep(0)
    },
  }
}

interface Node {
  server: NotificationServer
  store: PostgresStore
  url: string
  gate: Gate
}

const schema = `lr_${randomBytes(5).toString('hex')}`
const channel = `belfry:late-reads:${randomBytes(5).toString('hex')}`
let A: Node
let B: Node
let C: Node
let db: PostgresStore
const tabs: Tab[] = []

async function startNode(): Promise<Node> {
  const { pgUrl, redisUrl } = inject('cluster')
  const logger = pino({ level: 'silent' })
  const store = await PostgresStore.open(pgUrl, { schema, poolSize: 2 })
  const broker = await RedisBroker.connect(redisUrl, { channel, logger })
  const server = new NotificationServer({ secret: SECRET, apiKey: API_KEY, store, broker, logger })
  const { port } = await server.listen(0, '127.0.0.1')
  return { server, store, url: `ws://127.0.0.1:${port}/ws`, gate: gate(broker) }
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

/**
 * The late-read race of read-order.test.ts's first case: a notification published on A (its event
 * held), marked read on B, whose change reaches C first; then A's event. Resolves to what the
 * observer got.
 */
async function lateRead(user: string, observer: Tab, marker: Tab) {
  A.gate.hold()
  const sent = A.server.sendToUser(user, { title: 'late', body: '' })
  await A.gate.holding()
  const [entry] = await db.history(user, undefined, 1)
  const heard = observer.reads.length
  await marker.client.markRead(entry!.id)
  await until(() => observer.reads.length > heard, 5000, 'the observer hears the read change')
  await A.gate.release()
  await sent
  await until(() => observer.notes.some((n) => n.id === entry!.id), 5000, 'the observer gets the notification')
  await sleep(100)
  return { note: observer.notes.find((n) => n.id === entry!.id)!, store: await db.user(user) }
}

it('ids told more than 30 s ago fill the record while the user goes on reading: a notification read just now comes unread', async () => {
  // A user who works through her inbox: 1,000 notifications marked read (two pages of 500), then
  // she goes on reading (a change every 20 s keeps her record alive). Her record's ids are the
  // first 1,000 for good: what she reads afterwards is never remembered, though told seconds ago.
  const user = 'late1'
  for (let i = 0; i < 1001; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, 1001 - i) }, (_, k) => C.server.sendToUser(user, { title: `n${i + k}`, body: '' })),
    )
  }
  const observer = await tab(C, user)
  const marker = await tab(B, user)
  await until(() => observer.notes.length === 1001 && marker.notes.length === 1001, 30_000, 'both replay the inbox')
  const ids = observer.notes.map((n) => n.id)
  await marker.client.markRead(ids.slice(0, 500))
  await marker.client.markRead(ids.slice(500, 1000))
  await until(() => observer.client.unreadCount === 1, 5000, 'the observer is told of the 1,000')
  const realNow = Date.now.bind(Date)
  let offset = 0
  const clock = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + offset)
  try {
    offset = 20_000 // 20 s on, she reads one more: C tells it (and the record lives on)
    await marker.client.markRead(ids[1000]!)
    await until(() => observer.client.unreadCount === 0, 5000, 'the observer is told of the 1,001st')
    offset = 40_000 // the 1,000 were told 40 s ago
    await sleep(1100) // an upkeep runs: nothing of the record has expired (the last change was 20 s ago)
    const { note, store } = await lateRead(user, observer, marker)
    expect(store?.unreadCount).toBe(0)
    expect(observer.client.unreadCount).toBe(0)
    // Told on C a moment ago, but the record is full of ids told 40 s ago: it comes `read: false`.
    expect(note).toMatchObject({ read: true })
  } finally {
    clock.mockRestore()
  }
}, 60_000)

it('a read change told as it came (the state could not be read) is not remembered: a notification it named comes unread', async () => {
  const user = 'late2'
  const observer = await tab(C, user)
  const marker = await tab(B, user)
  const read = C.store.user
  C.store.user = async () => {
    C.store.user = read
    throw new Error('the store is away')
  }
  const { note, store } = await lateRead(user, observer, marker)
  expect(store?.unreadCount).toBe(0)
  expect(observer.client.unreadCount).toBe(0)
  // C told the observer of the change (its frame as it came) but did not remember it.
  expect(note).toMatchObject({ read: true })
})
