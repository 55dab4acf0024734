/**
 * PostgreSQL: one user's requests, within the user's frame budget, must not take every pooled
 * connection of the process from the other users. A user's `mark_read` locks the user's row
 * (`FOR UPDATE`) in a transaction on a pooled connection; while one mark runs (a `mark_read all`
 * over a long unread inbox is one UPDATE), the same user's marks on its other sockets each take a
 * pooled connection of their own and wait on that row lock, holding it. Ten sockets (of the 100 a
 * user may open) and a dozen frames (of a burst of 60) take the pool (10 by default): every other
 * user's publish then waits for a connection and, past `connectTimeoutMs`, is refused (503).
 * README, "Cost per user": budgets per user so that one user cannot cost the others.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { afterEach, expect, it } from 'vitest'
import { PostgresStore } from '../../src/server/index.js'
import { usePostgres, waitingForLock } from '../helpers/postgres.js'
import { authedClient, httpPublish, type RawClient, settle, type TestServer, useServer } from '../helpers/server.js'

const db = usePostgres()
const start = useServer()
const opened: pg.Client[] = []
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.end().catch(() => {})))
})

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: db.url })
  await c.connect()
  opened.push(c)
  return c
}

it('a user’s marks waiting on its own row lock do not take the pool from another user’s publish', async () => {
  const schema = `t_${randomBytes(6).toString('hex')}`
  // The defaults but a shorter wait for a pooled connection (5 s by default), and no statement timeout in the way.
  const store = await PostgresStore.open(db.url, { schema, poolSize: 10, connectTimeoutMs: 1000, queryTimeoutMs: 120_000 })
  const s: TestServer = await start({ store })
  const sql = await client()
  // mallory's inbox: a long backlog of unread entries (a busy topic while she was away), made directly.
  await store.publish({ userIds: ['mallory'] }, { title: 'first', body: '' })
  const { rows } = await sql.query(
    `SELECT u.no, i.notification_no FROM ${schema}.users u JOIN ${schema}.inbox i ON i.user_no = u.no WHERE u.id = 'mallory'`,
  )
  const { no, notification_no } = rows[0] as { no: number; notification_no: number }
  const N = 2_000_000
  await sql.query(
    `INSERT INTO ${schema}.inbox (user_no, seq, notification_no, read) SELECT $1, g, $2, false FROM generate_series(2, $3) g`,
    [no, notification_no, N],
  )
  await sql.query(`UPDATE ${schema}.users SET latest_seq = $2, unread = $2 WHERE no = $1`, [no, N])

  const bob = await authedClient(s, 'bob')
  // since: the latest, so that nothing is replayed.
  const mallory: RawClient[] = []
  for (let i = 0; i < 12; i++) mallory.push(await authedClient(s, 'mallory', { since: N }))

  // One mark of all, then one more on each other socket: 12 frames, well within the burst (60).
  mallory[0]!.send({ type: 'mark_read', all: true, requestId: 'all' })
  const watcher = await client()
  await expect
    .poll(
      async () =>
        (
          await watcher.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND query LIKE '%SET read = true%'`,
          )
        ).rows[0].n,
      { timeout: 10_000 },
    )
    .toBe(1)
  for (const c of mallory.slice(1)) c.send({ type: 'mark_read', all: true })
  // Here nine of them take a pooled connection each and wait for mallory's row: with the first, the whole
  // pool. (A server that keeps a user's marks from piling up on the pool has none waiting: the publish
  // below is tried after this wait either way.)
  const locked = await waitingForLock(watcher, 'FOR UPDATE', 9).then(
    () => true,
    () => false,
  )

  // bob's publish has nothing to do with mallory's row.
  const published = await httpPublish(s.url, { userId: 'bob', title: 'for bob', body: '' })
  const stillMarking =
    (
      await watcher.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND query LIKE '%SET read = true%'`,
      )
    ).rows[0].n > 0
  expect(
    { status: published.status, json: published.json },
    `mallory's mark of all still running: ${stillMarking}; 9 of her marks waited on her row's lock: ${locked}`,
  ).toMatchObject({
    status: 201,
  })
  await bob.next((f) => f.type === 'notification' && f.title === 'for bob')

  // mallory spent 12 frames of her 60: no 4029 (and her marks all complete).
  await mallory[0]!.next((f) => f.type === 'read' && f.requestId === 'all')
  for (const c of mallory) expect(c.ws.readyState).toBe(c.ws.OPEN)
  await settle(bob)
  for (const c of [bob, ...mallory]) c.close()
}, 180_000)
