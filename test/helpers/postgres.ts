import type pg from 'pg'
import { afterAll, beforeAll, expect } from 'vitest'
import { type PgInstance, type PgOptions, startPostgres } from './services.js'

/**
 * A private PostgreSQL for one test file: started before its tests (the first
 * start may install the server, hence the long timeout), removed after them.
 * The instance is read through the returned object once the tests run. Apart
 * from services.ts, which the bench imports without vitest.
 */
export function usePostgres(options: PgOptions = {}): PgInstance {
  let db: PgInstance | undefined
  beforeAll(async () => {
    db = await startPostgres(options)
  }, 180_000)
  afterAll(async () => {
    await db?.dispose()
  })
  return new Proxy({} as PgInstance, {
    get(_, key) {
      if (!db) throw new Error('the test file’s PostgreSQL is not started yet: read it inside a test or hook')
      const value = Reflect.get(db, key, db)
      return typeof value === 'function' ? value.bind(db) : value
    },
  })
}

/** Waits until `count` statements whose text holds `text` wait for a lock (seen through `watcher`). */
export async function waitingForLock(watcher: pg.Client, text: string, count = 1): Promise<void> {
  const waiting = async () =>
    (await watcher.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`, [`%${text}%`]))
      .rows[0].n
  await expect.poll(waiting, { timeout: 10_000 }).toBe(count)
}
