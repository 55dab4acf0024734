/**
 * docs/protocol.md, "The notification": on PostgreSQL `timestamp` is the database's time when the notification was
 * stored, and "a user's inbox in seq order never goes back in time, but for a broadcast or topic publish past one
 * batch". 133ed8a stamps a publish to users once their rows are locked; a broadcast (or topic) publish is stamped
 * when its notification row is inserted, before #batchOf/#deliver locks the users' rows. A broadcast of one batch
 * that waits for one recipient's row (ann's) while another publish to another recipient (bob) commits is then
 * given bob's next seq with a time before that publish's: bob's inbox goes back in time.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { afterEach, expect, it } from 'vitest'
import { PostgresStore } from '../../src/server/index.js'
import { usePostgres, waitingForLock } from '../helpers/postgres.js'
import { authedClient, httpPublish, type TestServer, useServer } from '../helpers/server.js'

const db = usePostgres()
const start = useServer()
const clients: pg.Client[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) await c.end()
})

async function inbox(s: TestServer, user: string): Promise<{ seq: number; title: string; timestamp: string }[]> {
  const c = await authedClient(s, user)
  const seen = c.of('notification').map((n) => ({ seq: n.seq as number, title: n.title as string, timestamp: n.timestamp as string }))
  c.close()
  return seen
}

for (const kind of ['broadcast', 'topic'] as const) {
  it(`a ${kind} publish of one batch that waited for a recipient's row does not go back in time in another recipient's inbox`, async () => {
    const schema = `t_${randomBytes(6).toString('hex')}`
    const s = await start({ store: await PostgresStore.open(db.url, { schema }) })
    // ann's row first (no 1), then bob's (no 2): a batch locks them in that order.
    expect((await httpPublish(s.url, { userId: 'ann', title: 'hello ann', body: '' })).status).toBe(201)
    expect((await httpPublish(s.url, { userId: 'bob', title: 'hello bob', body: '' })).status).toBe(201)
    if (kind === 'topic') {
      for (const user of ['ann', 'bob']) {
        const c = await authedClient(s, user)
        c.send({ type: 'subscribe', topic: 'news', requestId: 'r' })
        await c.next((f) => f.type === 'subscribed')
        c.close()
      }
    }
    const holder = new pg.Client(db.url)
    const watcher = new pg.Client(db.url)
    clients.push(holder, watcher)
    await Promise.all([holder.connect(), watcher.connect()])
    // Another transaction holds ann's row for a moment (a mark read, another publish).
    await holder.query('BEGIN')
    await holder.query(`SELECT 1 FROM ${schema}.users WHERE id = 'ann' FOR UPDATE`)
    const audience = kind === 'broadcast' ? { broadcast: true } : { topic: 'news' }
    const fanned = httpPublish(s.url, { ...audience, title: `the ${kind}`, body: '' })
    await waitingForLock(watcher, 'WHERE no = ANY($1) ORDER BY no FOR UPDATE', 1)
    await new Promise((resolve) => setTimeout(resolve, 50))
    // Stamped 50 ms after the fan-out's notification, committed at once (bob's row is free).
    expect((await httpPublish(s.url, { userId: 'bob', title: 'to bob', body: '' })).status).toBe(201)
    await holder.query('COMMIT')
    expect((await fanned).status).toBe(201)
    const seen = await inbox(s, 'bob')
    expect(seen.map((n) => n.title)).toEqual(['hello bob', 'to bob', `the ${kind}`])
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.timestamp >= seen[i - 1]!.timestamp, JSON.stringify(seen)).toBe(true)
  })
}
