import { copyFileSync, mkdtempSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SqliteStore } from '../../src/server/store/sqlite.js'

// sqlite.ts: "The file was found removed or replaced: the connection is closed, and every operation refuses with
// this." A read after that (a connect's touchUser, a replay's after(), history, topics) must refuse with the store's
// own reason, as a rejected promise, not with better-sqlite3's "The database connection is not open" (nor throw
// synchronously from a method that returns a promise).
describe('SqliteStore: reads once its file was found replaced', () => {
  let dir: string
  let file: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'belfry-review-gone-'))
    file = join(dir, 'inbox.db')
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('refuses every read with the reason the file is gone', async () => {
    const store = new SqliteStore(file)
    await store.publish({ userIds: ['a'] }, { title: 'n1', body: '' })
    copyFileSync(file, `${file}.copy`)
    renameSync(`${file}.copy`, file)
    // A write finds it out (and closes the connection).
    await expect(store.publish({ userIds: ['a'] }, { title: 'n2', body: '' })).rejects.toThrow(/was replaced under the running server/)

    const reason = /was replaced under the running server/
    const outcome = async (read: () => Promise<unknown>) => {
      try {
        return await read().then(
          () => 'resolved',
          (error: Error) => error.message,
        )
      } catch (error) {
        return `threw synchronously: ${(error as Error).message}`
      }
    }
    expect(await outcome(() => store.touchUser('a'))).toMatch(reason)
    expect(await outcome(() => store.user('a'))).toMatch(reason)
    expect(await outcome(() => store.after('a', 0, 10))).toMatch(reason)
    expect(await outcome(() => store.history('a', undefined, 10))).toMatch(reason)
    expect(await outcome(() => store.topics('a'))).toMatch(reason)
    expect(await outcome(() => store.latestSeqs(['a']))).toMatch(reason)
    await store.close()
  })
})
