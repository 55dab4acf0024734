/**
 * The cluster's PostgreSQL stops in the middle of a stream of publishes: the
 * publish API answers 503 and /healthz 503 on every process while it is down
 * (nothing is acknowledged that is not durable); once it is back the cluster
 * recovers by itself, and every client ends with its user's inbox (everything
 * acknowledged, and whatever committed), once each, in order.
 *
 * First, what that needs of a process: a connection PostgreSQL ends in the
 * middle of a transaction (a shutdown, a restart, pg_terminate_backend) fails
 * that transaction's publish, and nothing else — not the process.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type PgInstance, startPostgres, stopAllServices } from '../helpers/services.js'
import {
  type Cluster,
  closeTabs,
  expectAckedDelivered,
  expectAckedStored,
  expectEveryTabHasItsInbox,
  health,
  inboxes,
  openTabs,
  publish,
  type Sent,
  scenario,
  seeded,
  startCluster,
  subscribeAll,
  type Tab,
  until,
} from './harness.js'

// This file's own PostgreSQL: it is stopped here.
let pgi: PgInstance
let cluster: Cluster | undefined
let tabs: Tab[] = []

// One cluster for both tests.
beforeAll(async () => {
  pgi = await startPostgres()
  cluster = await startCluster({ pgUrl: pgi.url })
})
afterAll(async () => {
  closeTabs(tabs)
  await cluster?.stop()
  await stopAllServices()
})

const USERS = Array.from({ length: 50 }, (_, i) => `u${String(i).padStart(2, '0')}`)
const TOPICS = { odd: USERS.filter((_, i) => i % 2 === 1), tens: USERS.filter((_, i) => i % 10 === 0) }

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
          "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%'",
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

it('PostgreSQL stopped mid-stream: 503s while down, nothing acknowledged lost, recovers by itself', async () => {
  const r = seeded('postgres stopped')
  const c = cluster!
  tabs = await openTabs(c.wsUrl, USERS, 3)
  await subscribeAll(c, TOPICS)

  const back: Sent[] = []
  const sent = await scenario(c, tabs, r, {
    users: USERS,
    topics: Object.keys(TOPICS),
    before: 40,
    after: 40,
    checkpoint: 10_000,
    chaos: async () => {
      await pgi.stop()
      // Down: each process refuses publishes and fails its health check.
      for (const [i, node] of c.nodes.entries()) {
        const s = await publish(node, 20_000 + i, { userId: USERS[i]! }, 'while down')
        expect(s.status, `process ${i}: ${s.detail}`).toBe(503)
        expect((await health(node)).status).toBe(503)
      }
      await new Promise((resolve) => setTimeout(resolve, 1000))
      await pgi.start()
      // Back: every process takes publishes again, by itself.
      for (const [i, node] of c.nodes.entries()) {
        await until(
          async () => {
            const s = await publish(node, 30_000 + i, { userId: USERS[i]! }, 'back')
            back.push(s)
            return s.status === 201
          },
          30_000,
          `process ${i} takes publishes again`,
        )
      }
    },
  })
  // And says it is healthy again (it reports a failed write for a few seconds).
  await until(async () => (await Promise.all(c.nodes.map(health))).every((h) => h.status === 200), 30_000, 'every process healthy again')
  // The stream met the outage: some publishes were refused, none was answered otherwise.
  const refused = sent.filter((s) => s.status === 503).length
  console.log(`[cluster] postgres stopped: ${sent.length} publishes, ${refused} refused with 503 while it was down`)
  expect(sent.filter((s) => s.status !== 201 && s.status !== 503)).toEqual([])
  expect(refused).toBeGreaterThan(0)
  sent.push(...back)
  await expectAckedStored(c, sent)
  // What was refused was not stored.
  const { rows } = await c.db.query('SELECT count(*)::int AS n FROM belfry.notifications WHERE title = $1', ['while down'])
  expect(rows[0].n).toBe(0)
  const inbox = await expectEveryTabHasItsInbox(c, tabs)
  expectAckedDelivered(tabs, sent, inbox)
})
