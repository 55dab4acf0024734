/**
 * Review: a SQLite store that reached its `maxBytes` must be freed by retention.
 *
 * README: `maxBytes` makes writes past that size fail (publishes 503, /healthz "full") instead
 * of filling the disk; retention (`maxPerUser`, `days`, `POST /api/admin/prune`) is how an inbox
 * is bounded. Once the store is full, a prune pass has to be able to remove entries, or the store
 * stays full for good (a restart sets the same limit again).
 *
 * With notifications larger than a page (a body of 5,000 characters: the API takes 8,192, and
 * `data` up to 16 KiB) held by two users, a prune batch decrements each notification's `refs`
 * with an UPDATE: SQLite rewrites the overflowing row, allocating its new overflow pages before
 * it frees the old ones, and at max_page_count that fails with SQLITE_FULL. The whole batch rolls
 * back: nothing is ever removed, and every later publish is refused.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { SqliteStore } from '../../src/server/store/sqlite.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

describe('SqliteStore at its maxBytes', () => {
  it('is freed by a retention pass, and takes publishes again (notifications larger than a page, two recipients)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-review-full-'))
    dirs.push(dir)
    const store = new SqliteStore(join(dir, 'full.db'), { maxBytes: 256 * 1024 })
    try {
      const body = 'x'.repeat(5000) // within the API's 8,192 characters
      let stored = 0
      let refusal: Error | undefined
      for (; stored < 500; stored++) {
        try {
          await store.publish({ userIds: ['ann', 'bob'] }, { title: `n${stored}`, body })
        } catch (error) {
          refusal = error as Error
          break
        }
      }
      // Full: the publish is refused, the health check says so.
      expect(refusal?.message).toMatch(/full/)
      await expect(store.check()).rejects.toThrow(/full/)
      expect(stored).toBeGreaterThan(10)

      // Retention keeps the newest 2 entries of each user: a pass removes all the others.
      let removed = 0
      for (let after = 0; ; ) {
        const batch = await store.prune({ maxPerUser: 2 }, after)
        removed += batch.removed
        if (batch.next === undefined) break
        after = batch.next
      }
      expect(removed).toBe(2 * (stored - 2))

      // Room again: the store takes publishes and passes its health check, without a restart.
      await expect(store.publish({ userIds: ['ann'] }, { title: 'after', body })).resolves.toMatchObject({
        deliveries: [{ userId: 'ann', seq: stored + 1 }],
      })
      await expect(store.check()).resolves.toBeUndefined()
    } finally {
      await store.close()
    }
  })
})
