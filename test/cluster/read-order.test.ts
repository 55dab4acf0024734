/**
 * Read state across processes: a socket's unread count must end as the store's, whatever order
 * the events of several processes reach its process in. Three servers in this test process (A,
 * B, C), each with its own PostgresStore on one schema and its own RedisBroker on one channel. A
 * server's broker can be gated: what it publishes waits until the test lets it through, as a
 * process slow to reach Redis would have it; a server's store methods can be wrapped to hold a read
 * or a change as well. The observer is a NotificationClient on C.
 */
import { randomBytes } from 'node:crypto'
import { pino } from 'pino'
import { afterAll, beforeAll, expect, inject, it, vi } from 'vitest'
import type { BrokerEvent } from '../../src/server/index.js'
import { mintToken, NotificationServer, PostgresStore, RedisBroker } from '../../src/server/index.js'
import { rawClient, settle } from '../helpers/server.js'
import { API_KEY, closeTabs, openTab, SECRET, sleep, type Tab, until } from './harness.js'

/** A broker whose publishes the test can hold back (`hold()`) and let through in order (`release()`). */
interface Gate {
  hold(): void
  /** Resolves once `count` publishes are held. */
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

const schema = `ro_${randomBytes(5).toString('hex')}`
const channel = `belfry:read-order:${randomBytes(5).toString('hex')}`
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
  return { server, store, url: `ws://127.0.0.1:${port}/ws`, gate: gate(broker) }
}

beforeAll(async () => {
  // One at a time: the first creates the schema.
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

/** Waits until the observer has heard `reads` read changes, then a moment for anything that would follow. */
async function settled(observer: Tab, reads: number): Promise<number> {
  await until(() => observer.reads.length >= reads, 5000, `the observer hears ${reads} read changes`)
  await sleep(150)
  return observer.client.unreadCount
}

it('a notification marked read on another process before its own event arrives is not counted, and comes read', async () => {
  const observer = await tab(C, 'u1')
  const marker = await tab(B, 'u1')
  A.gate.hold()
  const sent = A.server.sendToUser('u1', { title: 'one', body: '' })
  await A.gate.holding()
  const [entry] = await db.history('u1', undefined, 1)
  await marker.client.markRead(entry!.id)
  await until(() => observer.reads.length === 1, 5000, 'the observer hears the read change')
  await A.gate.release()
  await sent
  await until(() => observer.notes.length === 1, 5000, 'the observer gets the notification')
  await sleep(150)
  // Regression: it came `read: false` (the event's), though the change told before it named it.
  expect(observer.notes[0]).toMatchObject({ id: entry!.id, read: true })
  expect(observer.client.unreadCount).toBe(0)
  expect((await db.user('u1'))?.unreadCount).toBe(0)
})

it('a notification covered by a read {all} made on another process before its own event arrives comes read', async () => {
  const observer = await tab(C, 'u1b')
  A.gate.hold()
  const sent = A.server.sendToUser('u1b', { title: 'one', body: '' })
  await A.gate.holding()
  // A client online marks up to the seq it knows of, which the held event has not reached; one that has not
  // been online yet knows of nothing and marks all there is (as a client older than the bound does).
  const marker = openTab(B.url, 'u1b')
  tabs.push(marker)
  await marker.client.markAllRead()
  await until(() => observer.reads.length >= 1, 5000, 'the observer hears the read change')
  await A.gate.release()
  await sent
  await until(() => observer.notes.length === 1, 5000, 'the observer gets the notification')
  expect(observer.notes[0]).toMatchObject({ seq: 1, read: true })
  // A later one is unread, as it should be.
  await publish(A, 'u1b', 'two', observer, marker)
  expect(observer.notes[1]).toMatchObject({ seq: 2, read: false })
  expect(observer.client.unreadCount).toBe(1)
})

it('two read changes made on two other processes, arriving in the wrong order: the newer count stays', async () => {
  const observer = await tab(C, 'u2')
  const onA = await tab(A, 'u2')
  const onB = await tab(B, 'u2')
  const one = await publish(B, 'u2', 'one', observer, onA, onB)
  const two = await publish(B, 'u2', 'two', observer, onA, onB)
  expect(observer.client.unreadCount).toBe(2)
  // A's change (count 1) reaches C after B's later one (count 0).
  A.gate.hold()
  await onA.client.markRead(one)
  await onB.client.markRead(two)
  await until(() => observer.reads.length === 1, 5000, 'the observer hears B’s change')
  await A.gate.release()
  expect(await settled(observer, 2)).toBe(0)
  expect((await db.user('u2'))?.unreadCount).toBe(0)
})

it('a read change arriving after a notification published later: that notification stays counted', async () => {
  const observer = await tab(C, 'u3')
  const onA = await tab(A, 'u3')
  const one = await publish(B, 'u3', 'one', observer, onA)
  A.gate.hold()
  await onA.client.markRead(one) // count 0 at seq 1, held
  await publish(B, 'u3', 'two', observer, onA)
  await A.gate.release()
  expect(await settled(observer, 1)).toBe(1)
  expect((await db.user('u3'))?.unreadCount).toBe(1)
})

it('a read change made on the observer’s own process, back through Redis after a newer one from another', async () => {
  const observer = await tab(C, 'u4')
  const sibling = await tab(C, 'u4')
  const onB = await tab(B, 'u4')
  const one = await publish(B, 'u4', 'one', observer, sibling, onB)
  const two = await publish(B, 'u4', 'two', observer, sibling, onB)
  // C's own change (count 1) reaches C after B's later one (count 0).
  C.gate.hold()
  await sibling.client.markRead(one)
  await onB.client.markRead(two)
  await until(() => observer.reads.length === 1, 5000, 'the observer hears B’s change')
  await C.gate.release()
  expect(await settled(observer, 2)).toBe(0)
})

/** Holds C's next read of a user's state once it has read, until `release()`. */
function holdNextRead(): { read: Promise<void>; release: () => void } {
  const user = C.store.user
  let release = () => {}
  let read = false
  const released = new Promise<void>((r) => (release = r))
  C.store.user = async (userId) => {
    C.store.user = user
    const state = await user.call(C.store, userId)
    read = true
    await released
    return state
  }
  return { read: until(() => read, 5000, 'C reads the state'), release }
}

it('reads the state again when a newer notification was sent while the read was in flight', async () => {
  const observer = await tab(C, 'u5')
  const onB = await tab(B, 'u5')
  const one = await publish(B, 'u5', 'one', observer, onB)
  const held = holdNextRead()
  await onB.client.markRead(one) // C reads: count 0 at seq 1
  await held.read
  await publish(B, 'u5', 'two', observer, onB) // sent on C while that read is in flight
  held.release()
  expect(await settled(observer, 1)).toBe(1)
})

it('read changes arriving while a read is in flight go out together, after one more read', async () => {
  const observer = await tab(C, 'u6')
  const onB = await tab(B, 'u6')
  const one = await publish(B, 'u6', 'one', observer, onB)
  const two = await publish(B, 'u6', 'two', observer, onB)
  const held = holdNextRead()
  await onB.client.markRead(one)
  await held.read // read before the next change committed: count 1
  await onB.client.markRead(two)
  await sleep(50) // its event reaches C while the read is held
  held.release()
  expect(await settled(observer, 1)).toBe(0)
  expect(observer.reads).toHaveLength(1)
  expect(observer.reads[0]).toMatchObject({ ids: [one, two], all: false, unreadCount: 0 })
})

it('when the state cannot be read, the change goes out with its own count', async () => {
  const observer = await tab(C, 'u7')
  const onB = await tab(B, 'u7')
  const one = await publish(B, 'u7', 'one', observer, onB)
  await publish(B, 'u7', 'two', observer, onB)
  const user = C.store.user
  C.store.user = async () => {
    C.store.user = user
    throw new Error('the store is away')
  }
  await onB.client.markRead(one)
  expect(await settled(observer, 1)).toBe(1)
  expect(observer.reads[0]).toMatchObject({ ids: [one], all: false, seq: 2, unreadCount: 1 })
})

it('a read {all} keeps its own seq, and a frame at the latest seq follows with the count', async () => {
  const observer = await tab(C, 'u8')
  const onB = await tab(B, 'u8')
  await publish(B, 'u8', 'one', observer, onB)
  // The change and a later publish reach C together: C reads the state after both committed.
  B.gate.hold()
  await onB.client.markAllRead()
  const sent = B.server.sendToUser('u8', { title: 'two', body: '' })
  await B.gate.holding(2)
  await B.gate.release()
  await sent
  expect(await settled(observer, 2)).toBe(1)
  expect(observer.reads.map(({ ids, all, seq, unreadCount }) => ({ ids, all, seq, unreadCount }))).toEqual([
    { ids: [], all: true, seq: 1, unreadCount: 1 },
    { ids: [], all: false, seq: 2, unreadCount: 1 },
  ])
  await until(() => observer.notes.length === 2, 5000, 'the observer gets two')
  expect(observer.client.unreadCount).toBe(1)
})

// Under load: reads of the user's state made stale by a stream of publishes or of read changes,
// and the connection that made a change.
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

it('the connection that made a bounded read {all} gets its reply and one count, not a third frame', async () => {
  // A raw socket on C was sent seqs 1 and 2, then marks all read up to 1 (as a client does whose
  // markAllRead was queued when it knew of 1): its reply says seq 1, a count at seq 2 follows.
  // Both changes come back to C through the broker; the socket made them and was told both.
  const onB = await tab(B, 'r4')
  await publish(B, 'r4', 'one', onB)
  await publish(B, 'r4', 'two', onB)
  const raw = await rawClient(C.url)
  raw.send({ type: 'auth', token: await mintToken(SECRET, 'r4'), since: 0 })
  await raw.next((f) => f.type === 'replayed' && f.more === false)
  expect(raw.of('notification')).toHaveLength(2)
  const heard = onB.reads.length
  raw.send({ type: 'mark_read', all: true, seq: 1, requestId: 'm' })
  await until(() => onB.reads.length >= heard + 2, 5000, 'the other connection hears both frames')
  await sleep(300)
  await settle(raw)
  raw.close()
  expect(raw.of('read').map(({ ids, all, seq, unreadCount }) => ({ ids, all, seq, unreadCount }))).toEqual([
    { ids: [], all: true, seq: 1, unreadCount: 1 },
    { ids: [], all: false, seq: 2, unreadCount: 1 },
  ])
})

// A notification read before its event reached C, later than the change that named it.
/**
 * The late-read race of the first case above: a notification published on A (its event
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

// Regression: the record's ids expired together, and once 1,000 were kept no more were: what she read then was never remembered.
it('a notification read just now comes read, after 1,000 ids told 40 s ago and a change every 20 s since', async () => {
  // A user who works through her inbox: 1,000 notifications marked read (two pages of 500), then
  // she goes on reading (a change every 20 s). What she reads last must be remembered.
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
    // Told on C a moment ago, among ids told 40 s ago.
    expect(note).toMatchObject({ read: true })
  } finally {
    clock.mockRestore()
  }
}, 60_000)

// Regression: a change told as it came (its user's state could not be read) was not remembered.
it('a read change told as it came (the state could not be read) is remembered too: a notification it named comes read', async () => {
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
  expect(note).toMatchObject({ read: true })
})
