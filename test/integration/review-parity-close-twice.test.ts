/**
 * Review (store parity): close() is "Safe to call twice" (store.ts) and writes the acks it has
 * gathered before it releases the database. On SQLite a second close() resolves only once
 * everything is written (the first runs through at once). On PostgreSQL a second close() made
 * while the first still writes its acks resolves at once (postgres.ts close(): `#closed` is set
 * before the flush and the pool's end are awaited), so a caller that awaits it is told the store is
 * closed while an ack it took is not written yet (and the pool still holds its connections).
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, expect, it } from 'vitest'
import { PostgresStore, SqliteStore } from '../../src/server/index.js'
import type { Store } from '../../src/server/store/store.js'
import { usePostgres, waitingForLock } from '../helpers/postgres.js'

const db = usePostgres()
const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

it('SqliteStore: a second close() resolves once the acks taken before are written', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-close-'))
  dirs.push(dir)
  const file = join(dir, 'inbox.db')
  const store: Store = new SqliteStore(file)
  for (const i of [1, 2, 3]) await store.publish({ userIds: ['u'] }, { title: `n${i}`, body: '' })
  const acked = store.ack('u', 2).catch(() => -1)
  const first = store.close()
  await store.close()
  const other = new SqliteStore(file)
  expect((await other.user('u'))?.ackedSeq).toBe(2)
  await other.close()
  await first
  expect(await acked).toBe(2)
})

it('PostgresStore: a second close() resolves once the acks taken before are written', async () => {
  const schema = `t_${randomBytes(6).toString('hex')}`
  const store: Store = await PostgresStore.open(db.url, { schema })
  for (const i of [1, 2, 3]) await store.publish({ userIds: ['u'] }, { title: `n${i}`, body: '' })
  // The ack's write waits a moment for the user's row (a publish to the user holds it, say).
  const holder = new pg.Client(db.url)
  const watcher = new pg.Client(db.url)
  await holder.connect()
  await watcher.connect()
  await holder.query('BEGIN')
  await holder.query(`SELECT 1 FROM ${schema}.users WHERE id = 'u' FOR UPDATE`)
  const acked = store.ack('u', 2).catch(() => -1)
  const first = store.close()
  await waitingForLock(watcher, 'SET acked_seq')
  let ackedAtSecondClose: number | undefined
  const second = store.close().then(async () => {
    ackedAtSecondClose = (await watcher.query(`SELECT acked_seq FROM ${schema}.users WHERE id = 'u'`)).rows[0].acked_seq
  })
  // Let the second close() resolve if it does not wait for the first; then free the row.
  await new Promise((resolve) => setTimeout(resolve, 300))
  await holder.query('COMMIT')
  await Promise.all([first, second])
  expect(await acked).toBe(2)
  await holder.end()
  await watcher.end()
  // Resolved, close() has written what it gathered: the second as the first.
  expect(ackedAtSecondClose).toBe('2')
})
