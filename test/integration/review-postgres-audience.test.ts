/**
 * Review: on PostgreSQL a broadcast's audience is "the users that exist when
 * the publish runs; a user created later is not in it" (docs/protocol.md,
 * Large audiences). The publish records it as `no <= max(no)` of the users it
 * sees, and the fan-out job later reads `no > after AND no <= up_to`. But an
 * identity value is taken when a row is inserted, not when it commits: a user
 * whose insert took a lower `no` and commits after the publish is not counted
 * in `recipients`, yet the job gives it an entry (src/server/store/postgres.ts,
 * #publishOnce and #batchOf). The same holds for a topic's subscriptions.
 */
import pg from 'pg'
import { afterEach, expect, it } from 'vitest'
import { PostgresStore } from '../../src/server/index.js'
import { usePostgres } from '../helpers/postgres.js'

const db = usePostgres()
const opened: { close(): Promise<void> }[] = []
afterEach(async () => {
  for (const o of opened.splice(0)) await o.close()
})

it('a user whose row commits after a broadcast committed gets no entry from its fan-out job', async () => {
  const store = await PostgresStore.open(db.url, { schema: 'review_audience', fanOutBatch: 1 })
  opened.push(store)
  await store.touchUser('a')
  // Another transaction creates a user: its `no` is taken now, its commit comes after the publish.
  const other = new pg.Client({ connectionString: db.url })
  await other.connect()
  opened.push({ close: () => other.end() })
  await other.query('BEGIN')
  await other.query(`INSERT INTO review_audience.users (id) VALUES ('late')`)
  await store.touchUser('b') // a higher `no`, committed before the publish
  const published = await store.publish({ broadcast: true }, { title: 'all', body: '' })
  expect(published.recipients).toBe(2) // a and b: 'late' did not exist yet
  await other.query('COMMIT')
  while (await store.fanOut());
  expect(await store.after('late', 0, 10)).toEqual([])
})
