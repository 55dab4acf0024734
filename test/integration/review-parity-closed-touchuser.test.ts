/**
 * Review (store parity): every Store method returns a promise (store.ts), and a store that cannot
 * answer rejects ("Reject instead of guessing"). After close(), PostgresStore's touchUser() rejects,
 * as SqliteStore's other reads do; SqliteStore's touchUser() throws synchronously instead (it is not
 * async: the read of a known user runs before any promise is made, sqlite.ts touchUser).
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { PostgresStore, SqliteStore } from '../../src/server/index.js'
import type { Store } from '../../src/server/store/store.js'
import { usePostgres } from '../helpers/postgres.js'

const db = usePostgres()
const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

const stores: Record<string, () => Promise<Store>> = {
  SqliteStore: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-closed-'))
    dirs.push(dir)
    return new SqliteStore(join(dir, 'inbox.db'))
  },
  PostgresStore: () => PostgresStore.open(db.url, { schema: `t_${randomBytes(6).toString('hex')}` }),
}

it.each(Object.keys(stores))('%s: after close(), touchUser() returns a rejected promise, as every other read does', async (name) => {
  const store = await stores[name]!()
  await store.touchUser('known')
  await store.close()
  for (const userId of ['known', 'new']) {
    let result: Promise<unknown> | undefined
    expect(() => {
      result = store.touchUser(userId)
    }, `${name} touchUser('${userId}') throws synchronously`).not.toThrow()
    await expect(result).rejects.toThrow()
  }
  // The other reads already do so on both stores.
  await expect(store.user('known')).rejects.toThrow()
  await expect(store.after('known', 0, 10)).rejects.toThrow()
})
