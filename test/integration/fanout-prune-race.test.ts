/**
 * Store.publish: "a job that ends with no entry left (its audience gone, its first entries pruned)
 * deletes its notification: no row stays that no inbox holds, which retention could never reach".
 * Store.prune deletes a notification whose last entry went, "not while a fan-out job still writes
 * it". The two meet when a pass removes a topic notification's last entries while the job's last
 * batch (its audience gone) ends: whichever way they interleave, the notification must go. Run on
 * both stores, with the retention pass and the fan-out on two stores of the same data (two processes).
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { PostgresStore } from '../../src/server/index.js'
import { SqliteStore } from '../../src/server/store/sqlite.js'
import type { Store } from '../../src/server/store/store.js'
import { usePostgres } from '../helpers/postgres.js'

const db = usePostgres()

interface Harness {
  open(): Promise<Store>
  /** The notification rows with no inbox entry and no fan-out job. */
  orphans(): Promise<number>
  dispose(): Promise<void>
}

const harnesses: Record<string, () => Promise<Harness>> = {
  SqliteStore: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-race-'))
    const file = join(dir, 'inbox.db')
    return {
      open: async () => new SqliteStore(file, { fanOutBatch: 1 }),
      async orphans() {
        const raw = new Database(file)
        try {
          const { n } = raw
            .prepare(
              `SELECT count(*) AS n FROM notifications n WHERE NOT EXISTS (SELECT 1 FROM inbox i WHERE i.notification_no = n.no)
               AND NOT EXISTS (SELECT 1 FROM fanout_jobs j WHERE j.notification_no = n.no)`,
            )
            .get() as { n: number }
          return n
        } finally {
          raw.close()
        }
      },
      dispose: async () => rmSync(dir, { recursive: true, force: true }),
    }
  },
  PostgresStore: async () => {
    const s = `t_${randomBytes(6).toString('hex')}`
    const query = async (text: string) => {
      const client = new pg.Client(db.url)
      await client.connect()
      try {
        return (await client.query(text)).rows
      } finally {
        await client.end()
      }
    }
    return {
      open: () => PostgresStore.open(db.url, { schema: s, fanOutBatch: 1 }),
      async orphans() {
        const rows = await query(
          `SELECT count(*)::int AS n FROM ${s}.notifications n WHERE NOT EXISTS (SELECT 1 FROM ${s}.inbox i WHERE i.notification_no = n.no)
           AND NOT EXISTS (SELECT 1 FROM ${s}.fanout_jobs j WHERE j.notification_no = n.no)`,
        )
        return rows[0].n as number
      },
      dispose: async () => void (await query(`DROP SCHEMA IF EXISTS ${s} CASCADE`)),
    }
  },
}

for (const [name, make] of Object.entries(harnesses)) {
  describe(`${name}: a retention pass and a fan-out job's last batch at once`, () => {
    let harness: Harness
    const opened: Store[] = []
    afterAll(async () => {
      for (const s of opened) await s.close()
      await harness?.dispose()
    })

    it('leave no notification that no inbox holds', async () => {
      harness = await make()
      const publisher = await harness.open()
      const pruner = await harness.open()
      opened.push(publisher, pruner)
      let round = 0
      // Each round: a topic notification whose first batch (x's entry) is all it will ever have (y left
      // before the job's next batch); a pass removes x's entry while the job ends. The interleaving is
      // up to the two transactions: a round is tried many times.
      for (; round < 400; round++) {
        await publisher.subscribe(`x${round}`, [`t${round}`], 10)
        await publisher.subscribe(`y${round}`, [`t${round}`], 10)
        const published = await publisher.publish({ topic: `t${round}` }, { title: `n${round}`, body: '' })
        expect(published).toMatchObject({ pending: true, deliveries: [{ userId: `x${round}`, seq: 1 }] })
        await publisher.unsubscribe(`y${round}`, [`t${round}`])
        const rule = { before: new Date(Date.now() + 60_000).toISOString() } // every entry is older
        await Promise.all([
          (async () => {
            for (let after: number | undefined = 0; after !== undefined; ) after = (await pruner.prune(rule, after)).next
          })(),
          (async () => {
            while (await publisher.fanOut());
          })(),
        ])
        if ((await harness.orphans()) > 0) break
      }
      expect(await harness.orphans(), `notifications left with no entry and no job, after round ${round}`).toBe(0)
    }, 60_000)
  })
}
