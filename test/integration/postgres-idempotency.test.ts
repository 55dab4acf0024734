/**
 * The ambiguous commit on PostgreSQL: the connection is lost after the
 * publish's statement reached PostgreSQL and committed, before the reply
 * reached the server. The server cannot tell whether it committed: it
 * answers 503. A retry with the same Idempotency-Key answers with the id that
 * was stored, and the inbox holds it once; without a key the retry stores a
 * second copy.
 *
 *   server ──Bind "belfry_publish_…"──▶ proxy ──▶ PostgreSQL   commits
 *   server ◀────────── cut ─────────── proxy ◀── … ReadyForQuery
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'
import { PostgresStore } from '../../src/server/index.js'
import { IdempotencyKeyReusedError } from '../../src/server/store/store.js'
import { MarkerProxy } from '../helpers/marker-proxy.js'
import { usePostgres, waitingForLock } from '../helpers/postgres.js'
import { API_KEY, type TestServer, useServer } from '../helpers/server.js'

/** The end of every reply to a Sync: ReadyForQuery ('Z', length 5) outside a transaction ('I'). */
const READY_FOR_QUERY = Buffer.from([0x5a, 0, 0, 0, 5, 0x49])

/**
 * A TCP proxy to PostgreSQL that, once armed, lets the next client message
 * holding the marker through, withholds PostgreSQL's reply to it, and cuts
 * both sides once that reply is complete (the statement committed).
 */
class CommitCutter extends MarkerProxy {
  /** Connections cut so far. */
  cuts = 0

  constructor(target: number) {
    super(target, (chunk, { client, upstream }) => {
      // The reply is withheld; once it ends, PostgreSQL has committed and waits for the next query.
      if (chunk.subarray(-READY_FOR_QUERY.length).equals(READY_FOR_QUERY)) {
        this.cuts++
        client.destroy()
        upstream.destroy()
      }
    })
  }
}

const db = usePostgres()

describe('PostgreSQL: a publish whose commit reply is lost', () => {
  const start = useServer()
  let cutter: CommitCutter
  let admin: pg.Client
  let schema: string
  afterEach(async () => {
    await cutter?.close()
    await admin?.end()
  })

  /** A server on PostgreSQL through the cutter; alice exists (the publish's statement then runs once). */
  async function setUp(): Promise<TestServer> {
    schema = `t_${randomBytes(6).toString('hex')}`
    cutter = new CommitCutter(db.port)
    const port = await cutter.listen()
    const store = await PostgresStore.open(`postgres://postgres@127.0.0.1:${port}/postgres`, { schema })
    await store.touchUser('alice')
    admin = new pg.Client(db.url)
    await admin.connect()
    return start({ store })
  }

  const publish = async (s: TestServer, headers: Record<string, string> = {}) => {
    const res = await fetch(`${s.url}/api/notifications`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}`, ...headers },
      body: JSON.stringify({ userId: 'alice', title: 'Invoice paid', body: '#1042' }),
    })
    return { status: res.status, replayed: res.headers.get('idempotent-replayed'), json: (await res.json()) as Record<string, unknown> }
  }

  /** Alice's inbox as PostgreSQL holds it, read directly. */
  const inbox = async () =>
    (
      await admin.query(
        `SELECT n.id FROM ${schema}.inbox i JOIN ${schema}.notifications n ON n.no = i.notification_no
         WHERE i.user_no = (SELECT no FROM ${schema}.users WHERE id = 'alice') ORDER BY i.seq`,
      )
    ).rows.map((r) => r.id as string)

  it('answers 503; the retry with the same key answers with the stored id, and the inbox holds it once', async () => {
    const s = await setUp()
    cutter.arm('belfry_publish_')
    const lost = await publish(s, { 'idempotency-key': 'invoice-1042' })
    expect(cutter.cuts).toBe(1)
    expect(lost.status).toBe(503)
    expect(lost.json.message).toMatch(/may or may not have been stored; retry later with the same Idempotency-Key/)
    const stored = await inbox()
    expect(stored).toHaveLength(1) // it did commit
    const retry = await publish(s, { 'idempotency-key': 'invoice-1042' })
    expect(retry).toMatchObject({ status: 201, replayed: 'true', json: { ids: stored, recipients: 1 } })
    expect(await inbox()).toEqual(stored)
  })

  it('without a key, the retry stores the notification a second time', async () => {
    const s = await setUp()
    cutter.arm('belfry_publish_')
    expect((await publish(s)).status).toBe(503)
    expect(cutter.cuts).toBe(1)
    const retry = await publish(s)
    expect(retry.status).toBe(201)
    expect(await inbox()).toHaveLength(2)
  })
})

// Regression: `key IN (subquery) OR …` made PostgreSQL filter a sequential scan of every live key, on every keyed publish.
describe('PostgreSQL: the expired idempotency keys a keyed publish removes', () => {
  it('a keyed publish reads a bounded number of idempotency keys, not every live one', async () => {
    const s = `t_${randomBytes(6).toString('hex')}`
    const store = await PostgresStore.open(db.url, { schema: s, poolSize: 1 })
    const client = new pg.Client(db.url)
    await client.connect()
    try {
      const LIVE = 20_000
      // A day of keyed publishes, none expired yet.
      await client.query(`ALTER TABLE ${s}.idempotency_keys SET (autovacuum_enabled = off)`)
      await client.query(
        `INSERT INTO ${s}.idempotency_keys (key, fingerprint, id, created_at, recipients, expires_at)
         SELECT 'live-' || i, 'f', 'n' || i, '2026-01-01T00:00:00.000Z', 1, $1::bigint FROM generate_series(1, ${LIVE}) i`,
        [Date.now() + 3_600_000],
      )
      await client.query(`ANALYZE ${s}.idempotency_keys`)
      const PUBLISHES = 3
      for (let i = 0; i < PUBLISHES; i++) {
        await store.publish({ userIds: ['ann'] }, { title: `keyed ${i}`, body: '' }, { key: `k${i}`, ttlMs: 60_000 })
      }
      // The store's backend reports its table statistics when it ends (or within a second of going idle).
      await store.close()
      const stats = async () =>
        (
          await client.query(
            `SELECT coalesce(seq_tup_read, 0)::int AS "seqRead", coalesce(idx_scan, 0)::int AS "idxScans"
             FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'idempotency_keys'`,
            [s],
          )
        ).rows[0] as { seqRead: number; idxScans: number }
      // Each keyed publish looks its key up by the primary key: once those are counted, the publishes' reads are.
      await expect.poll(async () => (await stats()).idxScans, { timeout: 15_000, interval: 200 }).toBeGreaterThanOrEqual(PUBLISHES)
      const { seqRead } = await stats()
      // A bounded clean-up reads about EXPIRED_KEYS_BATCH keys per publish (here none are expired): not the 20,000 live ones each.
      expect(seqRead, `rows of idempotency_keys read by sequential scans in ${PUBLISHES} keyed publishes`).toBeLessThan(1000)
    } finally {
      await client.end()
      await store.close()
    }
  }, 30_000)
})

// Regression: the publish's clean-up waited for its own expired key while holding the batch it had locked: a
// clean-up that held that key and waited for one of the batch's made a cycle, and PostgreSQL failed the publish (40P01).
describe('PostgreSQL: a keyed publish whose expired key another clean-up is removing', () => {
  it('publishes, once for its key: its clean-up waits for no key another transaction holds (no deadlock)', async () => {
    const s = `t_${randomBytes(6).toString('hex')}`
    const store = await PostgresStore.open(db.url, { schema: s })
    const other = new pg.Client(db.url)
    await other.connect()
    try {
      await store.touchUser('ann')
      const expired = Date.now() - 60_000
      // Two expired keys: the publish's own, and one its clean-up batch takes.
      await other.query(
        `INSERT INTO ${s}.idempotency_keys (key, fingerprint, id, created_at, recipients, expires_at)
         VALUES ('mine', 'f', 'old-1', '2026-01-01T00:00:00.000Z', 1, $1), ('theirs', 'f', 'old-2', '2026-01-01T00:00:00.000Z', 1, $1)`,
        [expired],
      )
      const backend = (await other.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number
      // Another keyed publish's clean-up, one step at a time: it has deleted 'mine' (its batch), and will delete
      // 'theirs' (its own key). Its deadlock check waits long: only the publish's may find a cycle.
      await other.query('BEGIN')
      await other.query(`SET LOCAL deadlock_timeout = '1min'`)
      await other.query(`DELETE FROM ${s}.idempotency_keys WHERE key = 'mine'`)
      const publishing = store.publish({ userIds: ['ann'] }, { title: 'keyed', body: '' }, { key: 'mine', ttlMs: 60_000 })
      publishing.catch(() => {})
      // The publish waits for the other transaction: on 'mine' either way (to delete it, or to record it anew).
      const waiting = async () =>
        (await other.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))', [backend])).rows[0].n
      await expect.poll(waiting, { timeout: 10_000, interval: 10 }).toBe(1)
      // Now the other clean-up deletes its own key, which the publish's batch may hold, and commits.
      await other.query(`DELETE FROM ${s}.idempotency_keys WHERE key = 'theirs'`)
      await other.query('COMMIT')
      const outcome = await publishing.then(
        () => 'published',
        (error: { code?: string }) => `failed: ${error.code}`,
      )
      expect(outcome).toBe('published')
      const published = await publishing
      expect(published).toMatchObject({ recipients: 1 })
      expect(published.replayed).toBeUndefined()
      // The key now answers for this publish: one notification for it.
      const again = await store.publish({ userIds: ['ann'] }, { title: 'keyed', body: '' }, { key: 'mine', ttlMs: 60_000 })
      expect(again).toMatchObject({ replayed: true, recipients: 1, notification: { id: published.notification.id } })
      expect((await other.query(`SELECT count(*)::int AS n FROM ${s}.inbox`)).rows[0].n).toBe(1)
    } finally {
      await other.end()
      await store.close()
    }
  }, 30_000)
})

// Regression: a broadcast or topic publish recorded its key before it locked its users, a publish to users
// after: one key used by both at once (two requests, one key) met a user busy a moment, each waited for the
// other, and PostgreSQL cancelled one after its deadlock_timeout. Every transaction locks the users first.
describe('PostgreSQL: one key used at once by a publish to users and a broadcast or topic publish', () => {
  const deadlocks = async (c: pg.Client) =>
    Number((await c.query('SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()')).rows[0].deadlocks)

  for (const audience of [{ broadcast: true } as const, { topic: 'deploys' }]) {
    it(`with a ${'topic' in audience ? 'topic' : 'broadcast'}, from two processes: one stores, the other is refused, no deadlock`, async () => {
      const s = `t_${randomBytes(6).toString('hex')}`
      const a = await PostgresStore.open(db.url, { schema: s })
      const b = await PostgresStore.open(db.url, { schema: s })
      const watcher = new pg.Client(db.url)
      const holder = new pg.Client(db.url)
      await watcher.connect()
      await holder.connect()
      try {
        await a.subscribe('ann', ['deploys'], 10)
        const before = await deadlocks(watcher)
        // Ann's row is busy a moment (a mark read, another publish): both publishes meet it at once.
        await holder.query('BEGIN')
        await holder.query(`SELECT no FROM ${s}.users WHERE id = 'ann' FOR UPDATE`)
        const key = { key: 'order-7', ttlMs: 60_000 }
        const outcome = (p: Promise<unknown>) => p.catch((e: Error) => e)
        const toAnn = outcome(a.publish({ userIds: ['ann'] }, { title: 'order 7', body: 'to ann' }, key))
        await waitingForLock(watcher, 'FOR UPDATE')
        const toAll = outcome(b.publish(audience, { title: 'order 7', body: 'to all' }, key))
        await waitingForLock(watcher, '', 2)
        await holder.query('COMMIT')
        const outcomes = await Promise.all([toAnn, toAll])
        // One stored, one refused as a reused key: whichever came first.
        expect(outcomes.filter((o) => o instanceof IdempotencyKeyReusedError)).toHaveLength(1)
        expect(outcomes.filter((o) => !(o instanceof Error))).toHaveLength(1)
        expect(await a.after('ann', 0, 10)).toHaveLength(1)
        expect(await deadlocks(watcher), 'deadlocks PostgreSQL detected').toBe(before)
      } finally {
        await holder.query('ROLLBACK').catch(() => {})
        await holder.end()
        await watcher.end()
        await a.close()
        await b.close()
      }
    }, 30_000)
  }
})
