/**
 * PostgresStore's acks gather and are written together (store/batch.ts); a user's counters are read
 * with the ack taken but not yet written (`withUnwrittenAck`, store/store.ts: "a connection made
 * meanwhile starts after it, as it would once written"). An ack taken before a read of the counters
 * began must count in that read however the two round trips end: also when the ack's write commits
 * after the read's snapshot but its reply is handled before the read's (the write then is neither
 * unwritten any more nor in what the read saw).
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { expect, it } from 'vitest'
import { PostgresStore } from '../../src/server/index.js'
import { MarkerProxy, type Proxied } from '../helpers/marker-proxy.js'
import { usePostgres } from '../helpers/postgres.js'

const db = usePostgres()

for (const read of ['touchUser', 'user'] as const) {
  it(`${read}() started while an ack taken before it is being written reads that ack, whichever reply comes first`, async () => {
    const s = `t_${randomBytes(6).toString('hex')}`
    // Replies of the connection singled out wait here until released.
    const held: { chunk: Buffer; to: Proxied }[] = []
    let holding = true
    const proxy = new MarkerProxy(db.port, (chunk, to) => (holding ? held.push({ chunk, to }) : to.client.write(chunk)))
    const port = await proxy.listen()
    const store = await PostgresStore.open(`postgres://postgres@127.0.0.1:${port}/postgres`, { schema: s })
    const holder = new pg.Client(db.url)
    const watcher = new pg.Client(db.url)
    await holder.connect()
    await watcher.connect()
    try {
      for (let i = 1; i <= 10; i++) await store.publish({ userIds: ['ann'] }, { title: `n${i}`, body: '' })
      // A publish to ann in progress: her row is locked, so the ack's write waits for it.
      await holder.query('BEGIN')
      await holder.query(`SELECT 1 FROM ${s}.users WHERE id = 'ann' FOR UPDATE`)
      const acked = store.ack('ann', 10) // taken: the tab was sent everything
      await expect
        .poll(
          async () =>
            (
              await watcher.query(
                `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%acked_seq%'`,
              )
            ).rows[0].n,
          { timeout: 10_000 },
        )
        .toBe(1)
      // A connection of ann's authenticates now: its read of her counters runs (the ack is not committed), its
      // reply is slow to come back.
      proxy.arm(read === 'touchUser' ? 'belfry_touch_user' : 'floor_seq AS floor')
      const counters = store[read]('ann')
      await expect.poll(() => held.length, { timeout: 10_000 }).toBeGreaterThan(0)
      // Meanwhile the ack's write commits and is answered.
      await holder.query('COMMIT')
      expect(await acked).toBe(10)
      holding = false
      for (const h of held.splice(0)) h.to.client.write(h.chunk)
      expect((await counters)?.ackedSeq).toBe(10)
    } finally {
      await holder.query('ROLLBACK').catch(() => {})
      await holder.end()
      await watcher.end()
      await store.close()
      await proxy.close()
    }
  }, 30_000)
}
