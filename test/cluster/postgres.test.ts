/**
 * The cluster's PostgreSQL fails: a connection PostgreSQL ends in the middle
 * of a transaction (a shutdown, a restart, pg_terminate_backend) fails that
 * transaction's publish, and nothing else — not the process.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type PgInstance, startPostgres, stopAllServices } from '../helpers/services.js'
import { type Cluster, inboxes, publish, startCluster, until } from './harness.js'

// This file's own PostgreSQL: its connections are cut here.
let pgi: PgInstance
let cluster: Cluster | undefined

beforeAll(async () => {
  pgi = await startPostgres()
  cluster = await startCluster({ pgUrl: pgi.url })
})
afterAll(async () => {
  await cluster?.stop()
  await stopAllServices()
})

it('a server process whose connection PostgreSQL ends mid-transaction answers that publish 503, and lives on', async () => {
  const c = cluster!
  const [node] = c.nodes
  expect(await publish(node!, 0, { userId: 'ann' })).toMatchObject({ status: 201 })
  const admin = await c.db.connect()
  try {
    // Ann's row held elsewhere: the next publish to her waits inside its transaction, on its connection.
    await admin.query('BEGIN')
    await admin.query("SELECT 1 FROM belfry.users WHERE id = 'ann' FOR UPDATE")
    const publishing = publish(node!, 1, { userId: 'ann' })
    let pid: number | undefined
    await until(
      async () => {
        // (From outside the held transaction, whose view of pg_stat_activity would not change.)
        const { rows } = await c.db.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'WITH locked AS%'",
        )
        pid = rows[0]?.pid
        return pid !== undefined
      },
      10_000,
      'the publish waits for the lock',
    )
    // As a restart or a shutdown of PostgreSQL would: the connection is ended under the transaction.
    await c.db.query('SELECT pg_terminate_backend($1)', [pid])
    const cut = await publishing
    expect(cut, `the process's output ends:\n${node!.output().slice(-1500)}`).toMatchObject({ status: 503 })
    await admin.query('ROLLBACK')
  } finally {
    admin.release()
  }
  // Nothing of it was stored, and the process goes on (on a new connection).
  await new Promise((resolve) => setTimeout(resolve, 200))
  expect(node!.alive).toBe(true)
  expect(await publish(node!, 2, { userId: 'ann' })).toMatchObject({ status: 201 })
  const inbox = await inboxes(c.db, ['ann'])
  expect(inbox.get('ann')!.map((e) => [e.seq, e.title])).toEqual([
    [1, 'n0'],
    [2, 'n2'],
  ])
})
