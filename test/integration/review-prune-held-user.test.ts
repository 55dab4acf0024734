/**
 * A retention pass on PostgreSQL and a user whose row another transaction holds (a long publish, a
 * transaction of a process that vanished, for up to queryTimeoutMs + 1 s). The store promises
 * (Store.prune, README "Retention") that a pass never waits for such a user: it leaves it for the
 * next pass and goes on with the others. That must hold too when the user has more entries to
 * remove than one batch's budget (pruneBatch): a retention switched on over a backlog.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { expect, it } from 'vitest'
import { PostgresStore } from '../../src/server/index.js'
import type { PruneBatch } from '../../src/server/store/store.js'
import { usePostgres } from '../helpers/postgres.js'

const db = usePostgres()

it('a pass leaves a held user whose cut spans several batches for the next pass, and prunes the others meanwhile', async () => {
  const s = `t_${randomBytes(6).toString('hex')}`
  const store = await PostgresStore.open(db.url, { schema: s, pruneBatch: 2 })
  for (let i = 0; i < 5; i++) await store.publish({ userIds: ['ann', 'bob'] }, { title: `n${i}`, body: '' })
  const holder = new pg.Client(db.url)
  await holder.connect()
  let batches = 0
  let pass: Promise<number> | undefined
  try {
    // As a long publish to ann would: her counter row is locked until it commits.
    await holder.query('BEGIN')
    await holder.query(`SELECT 1 FROM ${s}.users WHERE id = 'ann' FOR UPDATE`)
    pass = (async () => {
      let removed = 0
      for (let after: number | undefined = 0; after !== undefined; batches++) {
        const batch: PruneBatch = await store.prune({ maxPerUser: 1 }, after)
        removed += batch.removed
        after = batch.next
        // The pruner's own pause between two batches (retention.ts).
        await new Promise((resolve) => (batch.removed > 0 ? setTimeout(resolve, 1) : setImmediate(resolve)))
      }
      return removed
    })()
    const outcome = await Promise.race([
      pass.then((removed) => ({ removed })),
      new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 10_000)),
    ])
    // The pass ends while ann is held, having pruned bob (4 entries) and left ann for the next pass.
    expect(outcome, `after ${batches} batches while ann was held`).toEqual({ removed: 4 })
    expect(await store.user('bob')).toMatchObject({ floor: 4 })
    expect(await store.user('ann')).toMatchObject({ floor: 0 })
  } finally {
    await holder.query('COMMIT').catch(() => {})
    await holder.end()
    // A pass still looping sees ann free and ends; then the store closes.
    await Promise.race([pass?.catch(() => 0), new Promise((r) => setTimeout(r, 5000))])
    await store.close()
  }
}, 30_000)
