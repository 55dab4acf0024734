/**
 * Delivery on one process (SQLite) where a connection's replay meets something
 * else: a cursor from another database, retention, a read change from another
 * socket. Each test failed on the code before its fix.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { NotificationClient } from '../../src/index.js'
import { InProcessBroker, SqliteStore } from '../../src/server/index.js'
import { API_KEY, authedClient, type RawClient, rawClient, settle, type TestServer, useServer } from '../helpers/server.js'

const raws: RawClient[] = []
const clients: NotificationClient[] = []
const dirs: string[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const c of raws.splice(0)) c.close()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
// Registered after the hook above, so that its server is disposed first (after hooks run last-registered first).
const server = useServer()

function sqlite(): SqliteStore {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-races-'))
  dirs.push(dir)
  return new SqliteStore(join(dir, 'belfry.db'))
}

function track(c: RawClient): RawClient {
  raws.push(c)
  return c
}

async function publishMany(s: TestServer, userId: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await s.server.sendToUser(userId, { title: `n${i}`, body: '' })
}

/** The in-process broker, with a status the test can flip (as Redis's does when it reconnects). */
class StatusBroker extends InProcessBroker {
  readonly #handlers = new Set<(up: boolean) => void>()
  override onStatus(handler: (up: boolean) => void): () => void {
    this.#handlers.add(handler)
    return () => this.#handlers.delete(handler)
  }
  announce(up: boolean): void {
    for (const h of this.#handlers) h(up)
  }
}

/** A latch: `open()` releases whoever awaits `wait`. */
function latch(): { wait: Promise<void>; open(): void } {
  let open!: () => void
  const wait = new Promise<void>((r) => {
    open = r
  })
  return { wait, open }
}

describe('delivery where a replay meets other work', () => {
  // Regression: the cursor was clamped to the latest seq and acks were cut to that, so this ack moved the
  // user's acknowledged cursor to 5 though nothing had been sent; a new device then got nothing.
  it('an ack after a cursor from another database (since > latest) acks nothing this connection was not sent', async () => {
    const s = await server()
    await publishMany(s, 'ann', 5)
    // A device whose cursor comes from another database: the server clamps it to 5 and sends nothing.
    const stale = track(await authedClient(s, 'ann', { since: 1000 }))
    expect(stale.of('notification')).toHaveLength(0)
    // It acks what it thinks it has (belfry's client acks its cursor on close).
    stale.send({ type: 'ack', seq: 1000 })
    await settle(stale)
    // docs/protocol.md: the acknowledged cursor never moves "past the last seq it sent on this
    // connection", and a cursor above the latest seq "acks nothing". Nothing was sent on that socket,
    // so a new device (no cursor) must still get the 5 entries no device of ann has received.
    const fresh = track(await authedClient(s, 'ann', { since: 0 }))
    expect(fresh.of('notification').map((f) => f.seq)).toEqual([1, 2, 3, 4, 5])
  })

  // Regression: the round re-read forever ("more was announced") once retention had removed it, and since
  // SQLite answers in a microtask the whole process hung.
  it('a replay round does not spin when retention removed what a reconcile announced', async () => {
    const store = sqlite()
    // Guard: the real store answers `after` in a microtask, so the spin starves the event loop for good.
    // Break it after 50 empty reads in a row, so the test can report it instead of hanging the worker.
    const readAfter = store.after.bind(store)
    let emptyInARow = 0
    let spun = false
    store.after = async (userId, from, limit) => {
      const rows = await readAfter(userId, from, limit)
      if (rows.length > 0) emptyInARow = 0
      else if (++emptyInARow > 50) {
        spun = true
        throw new Error('replay round spinning: 50 empty store reads in a row')
      }
      return rows
    }
    const broker = new StatusBroker()
    const s = await server({ store, broker, limits: { replayBatch: 5 } })
    await publishMany(s, 'ann', 10)
    const c = track(await rawClient(s.wsUrl))
    c.send({ type: 'auth', token: await s.token('ann'), since: 0 })
    await c.next((f) => f.type === 'replayed' && f.more === true)
    // The broker comes back (Redis reconnect): the server reads the store for its connections.
    // This one waits for `resume`, so it notes the user's latest seq (10) as pending.
    broker.announce(true)
    await sleep(50)
    // Retention then removes the user's (old) entries: everything up to 10.
    await sleep(100)
    const pruned = await fetch(`${s.url}/api/admin/prune`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ days: 0.000001 }), // ~86 ms: every entry of this test
    })
    expect(pruned.status).toBe(200)
    // The client continues the replay. Nothing is left after 5, but the round keeps re-reading
    // because "a newer seq (10) was announced while the read was in flight".
    c.send({ type: 'resume', since: 5, requestId: 'r1' })
    const end = await c.next((f) => (f.type === 'replayed' && f.requestId === 'r1') || f.type === 'error')
    expect({ spun, end }).toMatchObject({ spun: false, end: { type: 'replayed', more: false } })
  })

  // Regression: the read change went out at once and the round's rows, read before it, followed with
  // `read: false`: the client counted one unread where the store had none.
  it('a read change told during a replay round follows the round: the client’s unread count stays right', async () => {
    const store = sqlite()
    const readAfter = store.after.bind(store)
    // While `gate` is set, a read of the store is held (after it read) until the gate opens:
    // the time a replay round's rows are on their way (a real wait on PostgreSQL).
    let gate: Promise<void> | undefined
    let onRead: (() => void) | undefined
    store.after = async (userId, from, limit) => {
      const rows = await readAfter(userId, from, limit)
      const g = gate
      if (g) {
        onRead?.()
        await g
      }
      return rows
    }
    const s = await server({ store })
    await s.server.sendToUser('ann', { title: 'one', body: '' })
    // Ann's phone is live.
    const phone = track(await authedClient(s, 'ann'))

    // Ann's laptop connects (belfry's client): its first round's read is held.
    const g1 = latch()
    gate = g1.wait
    const read1 = new Promise<void>((r) => {
      onRead = r
    })
    const laptop = new NotificationClient({ url: s.wsUrl, token: () => s.token('ann'), WebSocket, storage: false })
    clients.push(laptop)
    laptop.connect()
    await read1
    // A publish meanwhile: the laptop (replaying) notes seq 2 and will read again.
    await s.server.sendToUser('ann', { title: 'two', body: '' })
    // The second read (which finds seq 2, unread) is held too.
    const g2 = latch()
    gate = g2.wait
    const read2 = new Promise<void>((r) => {
      onRead = r
    })
    g1.open()
    await read2
    gate = undefined
    // Ann marks everything read on her phone: the laptop is told {all: true, seq: 2, unreadCount: 0}.
    phone.send({ type: 'mark_read', all: true, requestId: 'm1' })
    await phone.next((f) => f.type === 'read' && f.requestId === 'm1')
    await sleep(50)
    // The held read goes on: seq 2 goes out to the laptop with `read: false`.
    g2.open()
    await laptop.ready()
    await sleep(100)
    // The store says 0 unread; the laptop must agree.
    expect((await store.user('ann'))?.unreadCount).toBe(0)
    expect(laptop.unreadCount).toBe(0)
  })
})
