/**
 * SqliteStore.markRead of a long inbox runs in parts, the event loop free
 * between them: close() (a server shutting down, which does not wait for the
 * requests its connections still handle) can come in between.
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

describe('SqliteStore: a mark of all that close() interrupts', () => {
  it('is all or nothing: the inbox is not left partly read, its unread count between the two', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-mark-close-'))
    dirs.push(dir)
    const file = join(dir, 'inbox.db')
    const LONG = 3 * MARK_SCAN_SEQS + 5
    const store = new SqliteStore(file)
    await Promise.all(
      Array.from({ length: LONG }, (_, i) => store.publish({ userIds: ['ann'] }, { title: `n${i}`, body: 'b' }, undefined, { gather: true })),
    )
    expect((await store.user('ann'))!.unreadCount).toBe(LONG)

    const all = store.markRead('ann', 'all').then(
      (change) => ({ ok: true as const, change }),
      (error: unknown) => ({ ok: false as const, error: String(error) }),
    )
    // The server shuts down meanwhile: its store closes.
    await new Promise((resolve) => setImmediate(resolve))
    await store.close()
    const outcome = await all

    const again = new SqliteStore(file)
    const unread = (await again.user('ann'))!.unreadCount
    await again.close()
    // Before the change a mark was one transaction: done (0 unread) or not begun (LONG).
    expect({ outcome: outcome.ok ? 'resolved' : outcome.error, unread }).toEqual({
      outcome: outcome.ok ? 'resolved' : outcome.error,
      unread: outcome.ok ? 0 : LONG,
    })
  })
})
