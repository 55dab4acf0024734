/**
 * PostgresStore and one idempotency key used at once by two processes for two different requests: a
 * publish to users and a broadcast (or topic) publish. One stores its notification; the other is
 * refused (IdempotencyKeyReusedError, the API's 422). Store's rule: no deadlock between its
 * transactions (docs/architecture.md, "Gap-free seqs in commit order": every transaction locks
 * in one order, so they wait for each other instead of deadlocking).
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { afterAll, expect, it } from 'vitest'
import { PostgresStore } from '../../src/server/index.js'
import { IdempotencyKeyReusedError } from '../../src/server/store/store.js'
import { usePostgres } from '../helpers/postgres.js'

const db = usePostgres()

const clients: pg.Client[] = []
afterAll(async () => {
  for (const c of clients) await c.end().catch(() => {})
})
async function client(): Promise<pg.Client> {
  const c = new pg.Client(db.url)
  await c.connect()
  clients.push(c)
  return c
}

/** Waits until `n` statements whose text holds `text` wait for a lock. */
async function waitingForLock(watcher: pg.Client, text: string, n: number): Promise<void> {
  const waiting = async () =>
    (await watcher.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`, [`%${text}%`]))
      .rows[0].n
  await expect.poll(waiting, { timeout: 10_000 }).toBe(n)
}

const deadlocks = async (c: pg.Client) =>
  Number((await c.query('SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()')).rows[0].deadlocks)

for (const audience of [{ broadcast: true } as const, { topic: 'deploys' }]) {
  it(`one key, a publish to a user and a ${'topic' in audience ? 'topic' : 'broadcast'} publish from two processes at once: one stores, the other is refused, no deadlock`, async () => {
    const s = `t_${randomBytes(6).toString('hex')}`
    const a = await PostgresStore.open(db.url, { schema: s })
    const b = await PostgresStore.open(db.url, { schema: s })
    try {
      await a.subscribe('ann', ['deploys'], 10)
      const watcher = await client()
      const holder = await client()
      const before = await deadlocks(watcher)
      // Ann's row is busy a moment (a mark read, another publish): both publishes meet it at once.
      await holder.query('BEGIN')
      await holder.query(`SELECT no FROM ${s}.users WHERE id = 'ann' FOR UPDATE`)
      const key = { key: 'order-7', ttlMs: 60_000 }
      const toAnn = a.publish({ userIds: ['ann'] }, { title: 'order 7', body: 'to ann' }, key).then(
        (p) => p,
        (e: Error) => e,
      )
      await waitingForLock(watcher, 'FOR UPDATE', 1)
      const toAll = b.publish(audience, { title: 'order 7', body: 'to all' }, key).then(
        (p) => p,
        (e: Error) => e,
      )
      await waitingForLock(watcher, '', 2)
      await holder.query('COMMIT')
      const outcomes = await Promise.all([toAnn, toAll])
      // One stored, one refused as a reused key: whichever came first.
      expect(outcomes.filter((o) => o instanceof IdempotencyKeyReusedError)).toHaveLength(1)
      expect(outcomes.filter((o) => !(o instanceof Error))).toHaveLength(1)
      expect((await a.after('ann', 0, 10)).map((n) => n.body)).toHaveLength(1)
      expect(await deadlocks(watcher), 'deadlocks PostgreSQL detected').toBe(before)
    } finally {
      await a.close()
      await b.close()
    }
  }, 30_000)
}
