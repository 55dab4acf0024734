import { afterAll, beforeAll } from 'vitest'
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
