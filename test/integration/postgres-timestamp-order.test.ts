/**
 * A notification's `timestamp` is the time it was stored, and `seq` numbers a user's inbox in
 * commit order (docs/protocol.md, "The notification"): read in seq order, an inbox's times never
 * go back. On SQLite a publish is stamped inside its transaction. On PostgreSQL it was stamped
 * before its statement and kept through every wait and retry: a publish that waited for a
 * recipient's row, or ran twice because a recipient was new, committed after publishes stamped
 * later. The database stamps it now, once the rows are locked.
 *
 * One process: the publish to ann and a newcomer comes first; its first pass finds the newcomer
 * missing (another transaction is recording it) and writes nothing, and it runs again once the
 * newcomer is recorded, after the publish to ann alone (50 ms later) committed.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'
import { PostgresStore } from '../../src/server/index.js'
import { usePostgres, waitingForLock } from '../helpers/postgres.js'
import { authedClient, httpPublish, type TestServer, useServer } from '../helpers/server.js'

const db = usePostgres()
const start = useServer()

/** A user's inbox as a fresh client reads it: seq and timestamp, in seq order. */
async function inbox(s: TestServer, user = 'ann'): Promise<{ seq: number; title: string; timestamp: string }[]> {
  const c = await authedClient(s, user)
  const seen = c.of('notification').map((n) => ({ seq: n.seq as number, title: n.title as string, timestamp: n.timestamp as string }))
  c.close()
  return seen
}

describe('timestamps in seq order', () => {
  let holder: pg.Client | undefined
  let watcher: pg.Client | undefined
  afterEach(async () => {
    await holder?.end()
    await watcher?.end()
    holder = watcher = undefined
  })

  it('on SQLite, a user’s inbox never goes back in time from one seq to the next', async () => {
    const s = await start()
    await httpPublish(s.url, { userId: 'ann', title: 'hello', body: '' })
    const [first, second] = await Promise.all([
      httpPublish(s.url, { userIds: ['ann', 'newcomer'], title: 'to ann and a newcomer', body: '' }),
      httpPublish(s.url, { userId: 'ann', title: 'to ann', body: '' }),
    ])
    expect([first.status, second.status]).toEqual([201, 201])
    const seen = await inbox(s)
    expect(seen).toHaveLength(3)
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.timestamp >= seen[i - 1]!.timestamp, JSON.stringify(seen)).toBe(true)
  })

  it('on PostgreSQL too: a publish that waited and ran twice reads as stored after the ones committed before it', async () => {
    const schema = `t_${randomBytes(6).toString('hex')}`
    const s = await start({ store: await PostgresStore.open(db.url, { schema }) })
    await httpPublish(s.url, { userId: 'ann', title: 'hello', body: '' })
    // The newcomer is being recorded at this moment by another transaction (its first connect, another publish).
    holder = new pg.Client(db.url)
    watcher = new pg.Client(db.url)
    await Promise.all([holder.connect(), watcher.connect()])
    await holder.query('BEGIN')
    await holder.query(`INSERT INTO ${schema}.users (id) VALUES ('newcomer')`)
    // Stamped now. Its first pass finds the newcomer missing (writing nothing); recording it waits for the other.
    const first = httpPublish(s.url, { userIds: ['ann', 'newcomer'], title: 'to ann and a newcomer', body: '' })
    await waitingForLock(watcher, 'unnest($1::text[]) AS t(x)', 1)
    await new Promise((resolve) => setTimeout(resolve, 50))
    // Stamped 50 ms later, committed at once.
    expect((await httpPublish(s.url, { userId: 'ann', title: 'to ann', body: '' })).status).toBe(201)
    await holder.query('COMMIT')
    expect((await first).status).toBe(201)
    const seen = await inbox(s)
    expect(seen.map((n) => n.title)).toEqual(['hello', 'to ann', 'to ann and a newcomer'])
    // As on SQLite: seq order (commit order) is time order.
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.timestamp >= seen[i - 1]!.timestamp, JSON.stringify(seen)).toBe(true)
  })
})

// A broadcast or topic publish of one batch is stamped once its batch's users are locked, as a publish to users.
describe('timestamps in seq order: a broadcast or topic publish of one batch', () => {
  const clients: pg.Client[] = []
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.end()
  })

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
})
