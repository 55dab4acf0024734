/**
 * The server's side of fan-out jobs and of a broker that loses events: a
 * broadcast too large for one transaction reaches everyone once, a job left by
 * a server that stopped is finished by the next, and connections catch up from
 * the store when the broker says it lost events.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { type Broker, type BrokerEvent, InProcessBroker, SqliteStore } from '../../src/server/index.js'
import { authedClient, httpPublish, type RawClient, useServer } from '../helpers/server.js'

const start = useServer()
const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
const dbFile = () => {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-fanout-'))
  dirs.push(dir)
  return join(dir, 'belfry.db')
}
const seqs = (c: RawClient) => c.of('notification').map((f) => f.seq)

describe('a broadcast larger than one transaction', () => {
  it('answers with the audience as recipients, and reaches every user once, connected or not', async () => {
    const file = dbFile()
    const s = await start({ store: new SqliteStore(file, { fanOutBatch: 10 }) })
    const users = Array.from({ length: 35 }, (_, i) => `u${i}`)
    const connected: RawClient[] = []
    for (const [i, u] of users.entries()) {
      if (i % 3 === 0) connected.push(await authedClient(s, u))
      else await s.server.sendToUser(u, { title: 'hello', body: '' })
    }
    const res = await httpPublish(s.url, { broadcast: true, title: 'all', body: '' })
    expect(res).toMatchObject({ status: 201, json: { recipients: 35 } })
    for (const c of connected) await vi.waitFor(() => expect(c.of('notification').map((f) => f.title)).toEqual(['all']))
    for (const c of connected) c.close()
    // Every user has it exactly once (the store is the truth).
    await vi.waitFor(async () => {
      const reader = new SqliteStore(file)
      try {
        for (const u of users)
          expect(
            (await reader.after(u, 0, 10)).filter((n) => n.title === 'all'),
            u,
          ).toHaveLength(1)
      } finally {
        await reader.close()
      }
    })
  })

  it('left unfinished by a server that stopped, is finished by the next one on the same store', async () => {
    const file = dbFile()
    const users = Array.from({ length: 30 }, (_, i) => `u${i}`)
    const first = new SqliteStore(file, { fanOutBatch: 10 })
    for (const u of users) await first.touchUser(u)
    const published = await first.publish({ broadcast: true }, { title: 'resumed', body: '' }) // no server ran its job
    expect(published.pending).toBe(true)
    await first.close()
    const s = await start({ store: new SqliteStore(file, { fanOutBatch: 10 }) })
    const late = await authedClient(s, 'u29')
    await vi.waitFor(() => expect(late.of('notification').map((f) => f.title)).toEqual(['resumed']))
    late.close()
  })
})

/** An in-process broker whose connection can be "lost": events published meanwhile vanish. */
class FlakyBroker implements Broker {
  readonly #inner = new InProcessBroker()
  readonly #statusHandlers = new Set<(up: boolean) => void>()
  up = true
  /** Events vanish without the broker noticing (a crash between commit and publish elsewhere). */
  dropping = false
  /** Publishing fails, as Redis's does while its connection is lost. */
  rejecting = false
  publish(events: readonly BrokerEvent[]): void {
    if (this.rejecting) throw new Error('broker: not connected')
    if (this.up && !this.dropping) this.#inner.publish(events)
  }
  subscribe(handler: (event: BrokerEvent) => void): () => void {
    return this.#inner.subscribe(handler)
  }
  ready(): Promise<void> {
    return this.#inner.ready()
  }
  onStatus(handler: (up: boolean) => void): () => void {
    this.#statusHandlers.add(handler)
    return () => this.#statusHandlers.delete(handler)
  }
  set(up: boolean): void {
    this.up = up
    for (const h of this.#statusHandlers) h(up)
  }
  close(): void {
    this.#inner.close()
  }
}

describe('a broker that loses events', () => {
  it('while it is down: publishes are answered, /healthz says degraded, connections catch up from the store', async () => {
    const broker = new FlakyBroker()
    const s = await start({ broker })
    const ann = await authedClient(s, 'ann')
    await s.server.sendToUser('ann', { title: 'n1', body: '' })
    await vi.waitFor(() => expect(seqs(ann)).toEqual([1]))
    broker.set(false)
    expect((await httpPublish(s.url, { userId: 'ann', title: 'n2', body: '' })).status).toBe(201)
    const health = await fetch(`${s.url}/healthz`)
    expect(health.status).toBe(200)
    expect(await health.json()).toMatchObject({ status: 'degraded' })
    // Down, the server reads the store for its connections every second.
    await vi.waitFor(() => expect(seqs(ann)).toEqual([1, 2]), { timeout: 3000 })
    ann.close()
  })

  it('while publishing to it fails: a read change still reaches the user’s other connections on this process', async () => {
    const broker = new FlakyBroker()
    const s = await start({ broker })
    const [tab1, tab2] = [await authedClient(s, 'ann'), await authedClient(s, 'ann')]
    await s.server.sendToUser('ann', { title: 'n1', body: '' })
    await vi.waitFor(() => expect(seqs(tab2)).toEqual([1]))
    broker.rejecting = true
    broker.set(false)
    tab1.send({ type: 'mark_read', all: true, requestId: 'm1' })
    await vi.waitFor(() => expect(tab1.of('read')).toHaveLength(1))
    await vi.waitFor(() => expect(tab2.of('read')).toMatchObject([{ all: true, unreadCount: 0 }]))
    // The one that made the change got its reply only.
    expect(tab1.of('read')).toMatchObject([{ requestId: 'm1' }])
    tab1.close()
    tab2.close()
  })

  it('a publish that failed at the broker while it said it was up: the other processes are told to read the store at the next sweep', async () => {
    const broker = new FlakyBroker()
    const a = await start({ broker })
    const b = await start({ broker, database: a.database })
    const bob = await authedClient(b, 'bob')
    broker.rejecting = true
    expect((await httpPublish(a.url, { userId: 'bob', title: 'missed', body: '' })).status).toBe(201)
    broker.rejecting = false
    // Not at b's 30 s reconcile, nor once something newer shows bob a gap.
    await vi.waitFor(() => expect(seqs(bob)).toEqual([1]), { timeout: 5000 })
    bob.close()
  })

  it('when it is back after losing events: connections catch up at once', async () => {
    const broker = new FlakyBroker()
    const s = await start({ broker })
    const ann = await authedClient(s, 'ann')
    // Lost without the broker noticing (a crash between commit and publish elsewhere), then a reconnect of the broker.
    broker.dropping = true
    await s.server.sendToUser('ann', { title: 'lost', body: '' })
    broker.dropping = false
    expect(seqs(ann)).toEqual([])
    broker.set(false)
    broker.set(true)
    await vi.waitFor(() => expect(seqs(ann)).toEqual([1]))
    expect(await (await fetch(`${s.url}/healthz`)).json()).toMatchObject({ status: 'ok' })
    ann.close()
  })
})
