import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SqliteStore } from '../../src/server/store/sqlite.js'
import { storeContract } from '../contract/store.js'

storeContract('SqliteStore', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-store-'))
  const file = join(dir, 'inbox.db')
  return {
    open: async () => new SqliteStore(file),
    reopen: async () => new SqliteStore(file),
    dispose: async () => rmSync(dir, { recursive: true, force: true }),
  }
})

describe('SqliteStore: its tables', () => {
  let dir: string
  let file: string
  let store: SqliteStore
  const open: { close(): unknown }[] = []
  const track = <T extends { close(): unknown }>(handle: T): T => {
    open.push(handle)
    return handle
  }
  /** A second, raw connection on the same file, to look at (or tamper with) the tables. */
  const raw = () => track(new Database(file))

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'belfry-store-'))
    file = join(dir, 'inbox.db')
    store = track(new SqliteStore(file))
  })
  afterEach(async () => {
    for (const handle of open.splice(0).reverse()) await handle.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const note = (title: string) => ({ title, body: `body of ${title}` })

  /** Row counts and the user counters as the database holds them. */
  function snapshot(db: Database.Database) {
    return {
      notifications: (db.prepare('SELECT count(*) AS n FROM notifications').get() as { n: number }).n,
      inbox: db.prepare('SELECT user_id, seq, notification_id, read FROM inbox ORDER BY user_id, seq').all(),
      users: db.prepare('SELECT id, latest_seq, acked_seq, unread FROM users ORDER BY id').all(),
    }
  }

  /** The unread counter must always equal the number of unread inbox rows. */
  function expectCountersConsistent(db: Database.Database) {
    const rows = db
      .prepare('SELECT u.id, u.unread, (SELECT count(*) FROM inbox i WHERE i.user_id = u.id AND i.read = 0) AS actual FROM users u')
      .all() as { id: string; unread: number; actual: number }[]
    expect(rows.length).toBeGreaterThan(0)
    for (const r of rows) expect({ id: r.id, unread: r.unread }).toEqual({ id: r.id, unread: r.actual })
  }

  it('stores a broadcast once, with one inbox row per user', async () => {
    await store.touchUser('a')
    await store.touchUser('b')
    await store.publish({ broadcast: true }, note('all'))
    const snap = snapshot(raw())
    expect(snap.notifications).toBe(1)
    expect(snap.inbox).toHaveLength(2)
  })

  describe('is atomic: an insert that fails midway leaves nothing behind', () => {
    /** Makes every inbox insert for user `boom` fail, from a second connection. */
    function armTrap(db: Database.Database) {
      db.exec(`CREATE TRIGGER trap BEFORE INSERT ON inbox WHEN NEW.user_id = 'boom'
               BEGIN SELECT RAISE(ABORT, 'trap'); END`)
    }

    it.each([
      ['userIds', { userIds: ['a', 'b', 'boom', 'c'] }],
      ['broadcast', { broadcast: true as const }],
      ['topic', { topic: 'news' }],
    ])('%s', async (_, audience) => {
      for (const user of ['a', 'b', 'boom', 'c']) await store.subscribe(user, 'news')
      await store.publish({ userIds: ['a', 'b', 'c'] }, note('before'))
      const db = raw()
      const before = snapshot(db)
      // 'a' sorts (and is bumped) before 'boom', so its entry exists when the trap fires.
      expect(before.users.map((u) => (u as { id: string }).id)).toEqual(['a', 'b', 'boom', 'c'])
      armTrap(db)
      await expect(store.publish(audience, note('doomed'))).rejects.toThrow(/trap/)
      expect(snapshot(db)).toEqual(before)
      db.exec('DROP TRIGGER trap')
      // The store is still usable and the failed publish left no hole in the seqs.
      const { deliveries } = await store.publish(audience, note('after'))
      expect(deliveries.find((d) => d.userId === 'a')).toEqual({ userId: 'a', seq: 2 })
      expect(deliveries.find((d) => d.userId === 'boom')).toEqual({ userId: 'boom', seq: 1 })
      expectCountersConsistent(db)
    })
  })
})
