/**
 * Review (r7): SqliteStore.close() waits for the marks in progress as it is called
 * (Promise.allSettled of the set then), and the database stays open meanwhile: a mark of all that
 * starts while close() waits is neither refused nor waited for. close() then shuts the database
 * between its parts, leaving part of that inbox read.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { MARK_SCAN_SEQS, SqliteStore } from '../../src/server/store/sqlite.js'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

const settled = <T>(p: Promise<T>) =>
  p.then(
    () => 'resolved',
    (error: unknown) => String(error),
  )

describe('SqliteStore.close() while a mark of all is in parts', () => {
  it('a second mark of all, begun while close() waits for the first, is all or nothing too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-r7-mark-close-'))
    dirs.push(dir)
    const file = join(dir, 'inbox.db')
    const LONG = 3 * MARK_SCAN_SEQS + 5
    const store = new SqliteStore(file)
    // Ann and bob each have a long inbox (one broadcast-like publish to both per notification).
    await Promise.all(
      Array.from({ length: LONG }, (_, i) =>
        store.publish({ userIds: ['ann', 'bob'] }, { title: `n${i}`, body: 'b' }, undefined, { gather: true }),
      ),
    )
    expect((await store.user('bob'))!.unreadCount).toBe(LONG)

    const first = settled(store.markRead('ann', 'all'))
    await new Promise((resolve) => setImmediate(resolve))
    // The server shuts down: close() waits for ann's mark...
    const closing = store.close()
    // ...and bob's mark of all comes meanwhile (a request already on its way): the database is still open.
    const second = settled(store.markRead('bob', 'all'))
    await closing
    const outcomes = [await first, await second]

    const again = new SqliteStore(file)
    const ann = (await again.user('ann'))!.unreadCount
    const bob = (await again.user('bob'))!.unreadCount
    await again.close()
    expect(outcomes[0]).toBe('resolved')
    expect(ann).toBe(0)
    // Bob's mark: done (0 unread) or not begun (LONG); not part of his inbox read.
    expect({ outcome: outcomes[1], bob }).toEqual({ outcome: outcomes[1], bob: outcomes[1] === 'resolved' ? 0 : LONG })
  })
})
