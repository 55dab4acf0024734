/**
 * Review: a PostgreSQL retention batch holds every due user of its 500-user
 * page for its whole transaction, though its budget (`pruneBatch` entries)
 * lets it prune only the first of them.
 *
 * PostgresStore.prune locks all the due users of the page (`FOR UPDATE SKIP
 * LOCKED`), then reads, for every one of them, where its kept entries start
 * (a walk through all of a user's old entries), and only then spends its
 * budget, user by user. A publish to any user of the page waits for all of
 * that. With 500 users of 1,000 ten-day-old entries each and `days`
 * retention, one batch (1,000 entries, all of the first user's) takes about
 * 2 s here, and a publish to the 500th user, which the batch does not touch,
 * waits those 2 s; a pass is 500 such batches. With larger inboxes the batch
 * passes `queryTimeoutMs`: it is cancelled, retention never advances, and the
 * publishes queued behind it fail with 503 meanwhile. SqliteStore reads the
 * users one at a time and stops when the budget is spent.
 *
 * Here the batch is held at its last statement (a row lock on the
 * notifications, as a long scan would hold it): a publish to bob, whose
 * entries the batch leaves, must not wait for it.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { expect, it } from 'vitest'
import { PostgresStore } from '../../src/server/index.js'
import { usePostgres } from '../helpers/postgres.js'

const db = usePostgres()

it('a prune batch does not hold the users its budget leaves for later batches', async () => {
  const s = `t_${randomBytes(6).toString('hex')}`
  const pruner = await PostgresStore.open(db.url, { schema: s, pruneBatch: 3 })
  const publisher = await PostgresStore.open(db.url, { schema: s, queryTimeoutMs: 1000 })
  const holder = new pg.Client(db.url)
  await holder.connect()
  const watcher = new pg.Client(db.url) // outside the holder's transaction, which would see one snapshot of pg_stat_activity
  await watcher.connect()
  try {
    for (let i = 1; i <= 5; i++) await publisher.publish({ userIds: ['ann'] }, { title: `ann ${i}`, body: '' })
    for (let i = 1; i <= 5; i++) await publisher.publish({ userIds: ['bob'] }, { title: `bob ${i}`, body: '' })
    await new Promise((r) => setTimeout(r, 5))
    const before = new Date().toISOString()
    // The batch's budget (3) goes to ann: bob's entries stay for the next batch.
    await holder.query('BEGIN')
    await holder.query(`SELECT 1 FROM ${s}.notifications FOR UPDATE`)
    const batch = pruner.prune({ before }, 0).catch((error: Error) => error)
    // Wait until the batch is at its notifications update, its users' rows held.
    await expect
      .poll(
        async () =>
          (
            await watcher.query(
              `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%refs = n.refs - c.n%'`,
            )
          ).rows[0].n,
        { timeout: 10_000 },
      )
      .toBe(1)
    const started = Date.now()
    const published = await publisher.publish({ userIds: ['bob'] }, { title: 'bob 6', body: '' }).catch((error: Error) => error)
    await holder.query('COMMIT')
    expect(await batch).toMatchObject({ removed: 3, next: 0 })
    expect((await pruner.user('bob'))?.floor).toBe(0) // the batch did not prune bob
    expect(published, `publish to bob after ${Date.now() - started} ms`).toMatchObject({ deliveries: [{ userId: 'bob', seq: 6 }] })
  } finally {
    await holder.end().catch(() => {})
    await watcher.end()
    await pruner.close()
    await publisher.close()
  }
}, 30_000)
