/**
 * Review: a keyed publish on PostgreSQL reads every idempotency key there is.
 *
 * The contract (store.ts, EXPIRED_KEYS_BATCH): a keyed publish removes up to
 * 100 expired keys, "so they cannot pile up, and none waits long". SqliteStore
 * does that with primary-key look-ups. PostgresStore's look-up statement
 * deletes `key IN (SELECT … LIMIT 100 FOR UPDATE SKIP LOCKED) OR (key = $1 AND
 * expires_at <= $2)`: under an OR the IN cannot be a join, so PostgreSQL plans
 * a sequential scan of the whole table with a hashed subplan as its filter.
 * Every keyed publish then reads every live key (a day of them by default):
 * the cost of a keyed publish grows with the traffic of the last 24 h.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { expect, it } from 'vitest'
import { PostgresStore } from '../../src/server/index.js'
import { usePostgres } from '../helpers/postgres.js'

const db = usePostgres()

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
