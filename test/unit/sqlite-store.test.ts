import { closeSync, copyFileSync, mkdtempSync, openSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { MARK_SCAN_SEQS, SqliteStore } from '../../src/server/store/sqlite.js'
import { SCHEMA_VERSION } from '../../src/server/store/sqlite-schema.js'
import { EXPIRED_KEYS_BATCH, IdempotencyKeyReusedError } from '../../src/server/store/store.js'
import { storeContract } from '../contract/store.js'

storeContract('SqliteStore', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-store-'))
  const file = join(dir, 'inbox.db')
  return {
    open: async (options) => new SqliteStore(file, options),
    reopen: async (options) => new SqliteStore(file, options),
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
  /**
   * Holds a read transaction open on a raw connection until the returned function is called: the
   * store's checkpoint timer cannot start the WAL over meanwhile, so its size counts every commit.
   */
  const holdWal = (): (() => void) => {
    const reader = raw()
    reader.exec('BEGIN')
    reader.prepare('SELECT count(*) FROM users').get()
    return () => reader.exec('COMMIT')
  }

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
      inbox: db.prepare('SELECT user_no, seq, notification_no, read FROM inbox ORDER BY user_no, seq').all(),
      users: db.prepare('SELECT id, latest_seq, acked_seq, unread FROM users ORDER BY id').all(),
    }
  }

  /** The unread counter must always equal the number of unread inbox rows. */
  function expectCountersConsistent(db: Database.Database) {
    const rows = db
      .prepare('SELECT u.id, u.unread, (SELECT count(*) FROM inbox i WHERE i.user_no = u.no AND i.read = 0) AS actual FROM users u')
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

  it('counts in refs the inbox rows of each notification, and deletes a notification with its last row, not before', async () => {
    const other = track(new SqliteStore(join(dir, 'batched.db'), { fanOutBatch: 2 }))
    const db = track(new Database(join(dir, 'batched.db')))
    for (const u of ['a', 'b', 'c']) await other.touchUser(u)
    await other.subscribe('a', ['news'], 10)
    await other.subscribe('c', ['news'], 10)
    await other.publish({ broadcast: true }, note('all'))
    await other.publish({ userIds: ['a', 'b', 'a'] }, note('two'))
    await other.publish({ topic: 'news' }, note('topical'))
    await other.publish({ topic: 'nobody' }, note('unheard'))
    while (await other.fanOut());
    const refsMatch = () =>
      db
        .prepare(
          `SELECT n.title, n.refs, (SELECT count(*) FROM inbox i WHERE i.notification_no = n.no) AS rows
           FROM notifications n ORDER BY n.no`,
        )
        .all()
    expect(refsMatch()).toEqual([
      { title: 'all', refs: 3, rows: 3 },
      { title: 'two', refs: 2, rows: 2 },
      { title: 'topical', refs: 2, rows: 2 },
    ])
    // c had the topic's entry before the broadcast's (the broadcast's job reached c later).
    expect(await other.prune({ maxPerUser: 1 }, 0)).toMatchObject({ removed: 4, users: 3, notifications: 0, next: undefined })
    expect(refsMatch()).toEqual([
      { title: 'all', refs: 1, rows: 1 },
      { title: 'two', refs: 1, rows: 1 },
      { title: 'topical', refs: 1, rows: 1 },
    ])
    expect(await other.prune({ maxPerUser: 0 }, 0)).toMatchObject({ removed: 3, users: 3, notifications: 3, next: undefined })
    expect(refsMatch()).toEqual([])
    expectCountersConsistent(db)
  })

  it('keeps no notification that no inbox holds: none for an empty audience, and a job that ends with none drops it', async () => {
    const other = track(new SqliteStore(join(dir, 'orphans.db'), { fanOutBatch: 1 }))
    const db = track(new Database(join(dir, 'orphans.db')))
    const titles = () => db.prepare('SELECT title FROM notifications ORDER BY no').all()
    // A topic no one follows, a broadcast before any user: nothing to store.
    expect(await other.publish({ topic: 'nobody' }, note('unheard'))).toMatchObject({ recipients: 0, pending: false })
    expect(await other.publish({ broadcast: true }, note('to no one'))).toMatchObject({ recipients: 0, pending: false })
    expect(titles()).toEqual([])
    // A job whose entries retention removed meanwhile, and whose last subscriber left before it ran.
    await other.subscribe('a', ['news'], 10)
    await other.subscribe('b', ['news'], 10)
    expect(await other.publish({ topic: 'news' }, note('topical'))).toMatchObject({ deliveries: [{ userId: 'a', seq: 1 }], pending: true })
    await other.publish({ userIds: ['a'] }, note('newer'))
    expect(await other.prune({ maxPerUser: 1 }, 0)).toMatchObject({ removed: 1, notifications: 0 }) // the job still runs
    await other.unsubscribe('b', ['news'])
    expect(await other.fanOut()).toMatchObject({ deliveries: [], done: true })
    expect(titles()).toEqual([{ title: 'newer' }])
    expectCountersConsistent(db)
  })

  it('commits the gathered publishes of one turn together, each in a savepoint: one that fails leaves the others', async () => {
    const users = Array.from({ length: 60 }, (_, i) => `g${i}`)
    for (const u of users) await store.touchUser(u)
    await store.publish({ userIds: ['g0'] }, note('first'), { key: 'k', ttlMs: 60_000 })
    const wal = () => statSync(`${file}-wal`).size
    const before = wal()
    const calls = users.map((u, i) =>
      // The 31st reuses a key for another request: it fails, alone.
      store.publish({ userIds: [u] }, note(`n${i}`), i === 30 ? { key: 'k', ttlMs: 60_000 } : undefined, { gather: true }),
    )
    const outcomes = await Promise.allSettled(calls)
    expect(outcomes[30]).toMatchObject({ status: 'rejected', reason: expect.any(IdempotencyKeyReusedError) })
    const done = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value.deliveries] : []))
    expect(done).toEqual(users.filter((_, i) => i !== 30).map((u) => [{ userId: u, seq: u === 'g0' ? 2 : 1 }]))
    // One commit for the 60. A commit each would have written three 4 KiB pages of WAL per publish
    // (720 KiB); the turn's first on its own, three more (about 12 KiB).
    expect(wal() - before).toBeLessThan(60 * 1024)
    const snap = snapshot(raw())
    expect(snap.notifications).toBe(60) // 'first' and the 59
    expect(snap.inbox).toHaveLength(60)
  })

  it("writes three pages a targeted publish: the notification, the inbox entry and the user's counters", async () => {
    const users = Array.from({ length: 40 }, (_, i) => `p${i}`)
    for (const u of users) await store.publish({ userIds: [u] }, note('first'))
    const wal = () => statSync(`${file}-wal`).size
    const release = holdWal()
    const before = wal()
    for (const u of users) await store.publish({ userIds: [u] }, note('second'))
    const grown = wal() - before
    release()
    // A WAL frame is a page (4 KiB) and its 24-byte header. An index on the notifications' random
    // ids put each id on a page of its own: a fourth page in every commit.
    const pages = grown / (4096 + 24) / users.length
    expect(pages).toBeGreaterThanOrEqual(3)
    expect(pages).toBeLessThan(3.5)
  })

  it('commits a publish not to be gathered at once, in a turn where gathered ones wait for its end', async () => {
    const db = raw()
    const stored = () => (db.prepare('SELECT count(*) AS n FROM notifications').get() as { n: number }).n
    const first = store.publish({ userIds: ['a'] }, note('first'), undefined, { gather: true })
    const gathered = store.publish({ userIds: ['b'] }, note('gathered'), undefined, { gather: true })
    const direct = store.publish({ userIds: ['c'] }, note('direct'))
    expect(stored()).toBe(1) // the direct one; the gathered ones, the turn's first too, at the turn's end
    await Promise.all([first, gathered, direct])
    expect(stored()).toBe(3)
  })

  it('commits a turn’s lone gathered publish at the turn’s end, and reports its failure to it alone', async () => {
    await store.publish({ userIds: ['a'] }, note('keyed'), { key: 'lone', ttlMs: 60_000 })
    const alone = store.publish({ userIds: ['a'] }, note('other'), { key: 'lone', ttlMs: 60_000 }, { gather: true })
    await expect(alone).rejects.toBeInstanceOf(IdempotencyKeyReusedError)
    const next = await store.publish({ userIds: ['a'] }, note('next'), undefined, { gather: true })
    expect(next.deliveries).toEqual([{ userId: 'a', seq: 2 }])
  })

  it('records the new users of a window together, in one commit, though each came in a turn of its own', async () => {
    await store.touchUser('first')
    const wal = () => statSync(`${file}-wal`).size
    const release = holdWal()
    const before = wal()
    const touched: Promise<unknown>[] = []
    for (let i = 0; i < 40; i++) {
      touched.push(store.touchUser(`new-${i}`))
      await new Promise((resolve) => setImmediate(resolve))
    }
    expect(await Promise.all(touched)).toEqual(touched.map(() => ({ latestSeq: 0, ackedSeq: 0, unreadCount: 0, floor: 0 })))
    const grown = wal() - before
    release()
    // One commit (two or three on a slow machine): one each would have written the users' pages to the WAL 40 times.
    expect(grown).toBeGreaterThan(0)
    expect(grown).toBeLessThan(80 * 1024)
    expect(snapshot(raw()).users).toHaveLength(41)
  })

  it("marks by id only the user's own unread entries, each once, and answers them in seq order", async () => {
    const id = async (user: string, title: string) => (await store.publish({ userIds: [user] }, note(title))).notification.id
    const [a1, a2, a3, a4] = [await id('ann', 'a1'), await id('ann', 'a2'), await id('ann', 'a3'), await id('ann', 'a4')]
    const bens = await id('ben', 'b1')
    expect(await store.markRead('ann', [a2!])).toMatchObject({ ids: [a2], unreadCount: 3 })
    // Newest first, a duplicate, one already read, another user's, one unknown.
    const change = await store.markRead('ann', [a3!, a1!, a3!, a2!, bens, 'no-such-id'])
    expect(change).toMatchObject({ ids: [a1, a3], all: false, seq: 4, unreadCount: 1 })
    expect((await store.after('ann', 0, 10)).map((n) => [n.title, n.read])).toEqual([
      ['a1', true],
      ['a2', true],
      ['a3', true],
      ['a4', false],
    ])
    expect((await store.after('ben', 0, 10)).map((n) => n.read)).toEqual([false])
    expect(a4).toBeTruthy()
  })

  describe(`a long inbox (${3 * MARK_SCAN_SEQS + 5} entries) is marked in parts, other work done between them`, () => {
    const LONG = 3 * MARK_SCAN_SEQS + 5
    /** ann's inbox: LONG targeted publishes, gathered into one commit; their ids in seq order. */
    async function longInbox(): Promise<string[]> {
      const published = await Promise.all(
        Array.from({ length: LONG }, (_, i) => store.publish({ userIds: ['ann'] }, note(`n${i + 1}`), undefined, { gather: true })),
      )
      return published.map((p) => p.notification.id)
    }
    /** Counts the turns of the event loop from now until `stop()`. */
    function countTurns(): { stop(): number } {
      let turns = 0
      let running = true
      const tick = () => {
        if (!running) return
        turns++
        setImmediate(tick)
      }
      setImmediate(tick)
      return {
        stop() {
          running = false
          return turns
        },
      }
    }

    it('by ids: an id in no part is looked for in every part, the loop free between them; one in the oldest part is found', async () => {
      const ids = await longInbox()
      const turns = countTurns()
      expect(await store.markRead('ann', ['no-such-id'])).toEqual({ ids: [], all: false, seq: LONG, unreadCount: LONG })
      expect(turns.stop()).toBeGreaterThanOrEqual(3)
      const oldest = await store.markRead('ann', [ids[0]!, ids[LONG - 1]!])
      expect(oldest).toEqual({ ids: [ids[0], ids[LONG - 1]], all: false, seq: LONG, unreadCount: LONG - 2 })
    })

    it('all: in parts, the last reaching what was published meanwhile; then none is unread', async () => {
      await longInbox()
      const turns = countTurns()
      const all = store.markRead('ann', 'all')
      // Published while the first parts are marked: the last part takes it too.
      await new Promise((resolve) => setImmediate(resolve))
      await store.publish({ userIds: ['ann'] }, note('meanwhile'))
      expect(await all).toEqual({ ids: [], all: true, seq: LONG + 1, unreadCount: 0, upTo: LONG + 1 })
      expect(turns.stop()).toBeGreaterThanOrEqual(3)
      expect((await store.after('ann', LONG - 2, 10)).map((n) => n.read)).toEqual([true, true, true])
      expect((await store.user('ann'))!.unreadCount).toBe(0)
      expect(snapshot(raw()).inbox.filter((e) => !(e as { read: number }).read)).toEqual([])
    })

    it('all up to a bound: in parts up to it, the count lowered with each; what is above it, published before or meanwhile, stays unread', async () => {
      await longInbox()
      const bound = 2 * MARK_SCAN_SEQS + 7
      const turns = countTurns()
      const all = store.markRead('ann', 'all', bound)
      await new Promise((resolve) => setImmediate(resolve))
      // Each part's count is committed with it: some parts are done, not all.
      const between = (await store.user('ann'))!.unreadCount
      expect(between).toBeLessThan(LONG)
      expect(between).toBeGreaterThan(LONG - bound)
      await store.publish({ userIds: ['ann'] }, note('meanwhile'))
      expect(await all).toEqual({ ids: [], all: true, seq: LONG + 1, unreadCount: LONG + 1 - bound, upTo: bound })
      expect(turns.stop()).toBeGreaterThanOrEqual(2)
      expect((await store.after('ann', bound - 2, 4)).map((n) => n.read)).toEqual([true, true, false, false])
      expect((await store.user('ann'))!.unreadCount).toBe(LONG + 1 - bound)
      expect(snapshot(raw()).inbox.filter((e) => !(e as { read: number }).read)).toHaveLength(LONG + 1 - bound)
    })

    it('all: close() (a server shutting down) lets a mark in parts finish: the inbox is not left partly read', async () => {
      await longInbox()
      const all = store.markRead('ann', 'all')
      await new Promise((resolve) => setImmediate(resolve)) // its first part is done
      await store.close()
      expect(await all).toEqual({ ids: [], all: true, seq: LONG, unreadCount: 0, upTo: LONG })
      expect((await track(new SqliteStore(file)).user('ann'))!.unreadCount).toBe(0)
    })

    it('all: a mark that comes while close() waits for one in parts is refused, not cut between its parts', async () => {
      await Promise.all(
        Array.from({ length: LONG }, (_, i) => store.publish({ userIds: ['ann', 'bob'] }, note(`n${i}`), undefined, { gather: true })),
      )
      const ann = store.markRead('ann', 'all')
      await new Promise((resolve) => setImmediate(resolve))
      const closing = store.close()
      await expect(store.markRead('bob', 'all')).rejects.toThrow('the store is closing')
      await closing
      expect(await ann).toMatchObject({ all: true, unreadCount: 0 })
      const again = track(new SqliteStore(file))
      expect([(await again.user('ann'))!.unreadCount, (await again.user('bob'))!.unreadCount]).toEqual([0, LONG])
    })
  })

  it('writes the acks of a window together, in one commit, though each came in a turn of its own', async () => {
    const users = Array.from({ length: 40 }, (_, i) => `a${i}`)
    for (const u of users) await store.publish({ userIds: [u] }, note(u))
    const wal = () => statSync(`${file}-wal`).size
    const before = wal()
    const acks: Promise<number>[] = []
    for (const u of users) {
      acks.push(store.ack(u, 1))
      await new Promise((resolve) => setImmediate(resolve))
    }
    expect(await Promise.all(acks)).toEqual(users.map(() => 1))
    // One commit: one each would have written the users' page (4 KiB) to the WAL 40 times.
    expect(wal() - before).toBeLessThan(40 * 1024)
    expect(snapshot(raw()).users.map((u) => (u as { acked_seq: number }).acked_seq)).toEqual(users.map(() => 1))
  })

  it('removes expired idempotency keys at keyed publishes, a bounded batch each', async () => {
    const db = raw()
    const keys = () => (db.prepare('SELECT count(*) AS n FROM idempotency_keys').get() as { n: number }).n
    const insert = db.prepare(
      "INSERT INTO idempotency_keys (key, fingerprint, id, created_at, recipients, expires_at) VALUES (?, 'f', 'n', '2026-01-01T00:00:00.000Z', 1, ?)",
    )
    for (let i = 0; i < 250; i++) insert.run(`old${i}`, Date.now() - 1000 + i)
    insert.run('live', Date.now() + 60_000)
    await store.publish({ userIds: ['a'] }, note('unkeyed'))
    expect(keys()).toBe(251)
    await store.publish({ userIds: ['a'] }, note('keyed'), { key: 'k1', ttlMs: 60_000 })
    expect(keys()).toBe(251 - EXPIRED_KEYS_BATCH + 1)
    await store.publish({ userIds: ['a'] }, note('keyed'), { key: 'k2', ttlMs: 60_000 })
    await store.publish({ userIds: ['a'] }, note('keyed'), { key: 'k3', ttlMs: 60_000 })
    expect(db.prepare('SELECT key FROM idempotency_keys ORDER BY key').all()).toEqual([
      { key: 'k1' },
      { key: 'k2' },
      { key: 'k3' },
      { key: 'live' },
    ])
  })

  it('records no idempotency key for a publish that failed: its retry with the key stores it, once', async () => {
    const db = raw()
    await store.touchUser('boom')
    db.exec(`CREATE TRIGGER trap BEFORE INSERT ON inbox WHEN NEW.user_no = (SELECT no FROM users WHERE id = 'boom')
             BEGIN SELECT RAISE(ABORT, 'trap'); END`)
    const key = { key: 'k', ttlMs: 60_000 }
    await expect(store.publish({ userIds: ['a', 'boom'] }, note('doomed'), key)).rejects.toThrow(/trap/)
    expect(db.prepare('SELECT count(*) AS n FROM idempotency_keys').get()).toEqual({ n: 0 })
    db.exec('DROP TRIGGER trap')
    const first = await store.publish({ userIds: ['a', 'boom'] }, note('doomed'), key)
    expect(first.replayed).toBeUndefined()
    expect(await store.publish({ userIds: ['a', 'boom'] }, note('doomed'), key)).toMatchObject({ replayed: true })
    expect((await store.after('a', 0, 10)).map((n) => n.id)).toEqual([first.notification.id])
  })

  describe('is atomic: an insert that fails midway leaves nothing behind', () => {
    /** Makes every inbox insert for user `boom` fail, from a second connection. */
    function armTrap(db: Database.Database) {
      db.exec(`CREATE TRIGGER trap BEFORE INSERT ON inbox WHEN NEW.user_no = (SELECT no FROM users WHERE id = 'boom')
               BEGIN SELECT RAISE(ABORT, 'trap'); END`)
    }

    it.each([
      ['userIds', { userIds: ['a', 'b', 'boom', 'c'] }],
      ['broadcast', { broadcast: true as const }],
      ['topic', { topic: 'news' }],
    ])('%s', async (_, audience) => {
      for (const user of ['a', 'b', 'boom', 'c']) await store.subscribe(user, ['news'], 100)
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

describe('SqliteStore: a store that cannot work refuses to open, and a full one says so', () => {
  let dir: string
  let file: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'belfry-store-'))
    file = join(dir, 'inbox.db')
  })
  afterEach(() => {
    vi.restoreAllMocks()
    rmSync(dir, { recursive: true, force: true })
  })

  /** Writes some data and leaves the file complete (no WAL beside it). */
  function filled(): void {
    const store = new SqliteStore(file)
    for (let i = 0; i < 300; i++) void store.publish({ userIds: [`u${i % 7}`] }, { title: `n${i}`, body: 'x'.repeat(200) })
    void store.close()
  }

  it('refuses a read-only database (as SQLite opens a file of a newer format) with a clear error', () => {
    filled()
    const fd = openSync(file, 'r+')
    writeSync(fd, Buffer.from([3]), 0, 1, 18) // file format write version 3: SQLite may read it, not write it
    closeSync(fd)
    expect(() => new SqliteStore(file)).toThrow(/cannot be used: attempt to write a readonly database/)
  })

  it('refuses a corrupted database: its integrity check fails', () => {
    filled()
    const fd = openSync(file, 'r+')
    writeSync(fd, Buffer.alloc(3 * 4096, 0x5a), 0, 3 * 4096, 2 * 4096) // garbage over pages 3 to 5
    closeSync(fd)
    expect(() => new SqliteStore(file)).toThrow(/cannot be used: .*(integrity check|malformed)/)
  })

  it('refuses a file that is not a database', () => {
    writeFileSync(file, 'x'.repeat(10_000))
    expect(() => new SqliteStore(file)).toThrow(/cannot be used: file is not a database/)
  })

  it('fails writes past maxBytes, and its check says the store is full', async () => {
    const store = new SqliteStore(file, { maxBytes: 256 * 1024 })
    await expect(store.check()).resolves.toBeUndefined()
    let failure: unknown
    for (let i = 0; i < 1000 && failure === undefined; i++) {
      await store.publish({ userIds: ['a'] }, { title: `n${i}`, body: 'x'.repeat(4000) }).catch((error: unknown) => {
        failure = error
      })
    }
    expect(String(failure)).toMatch(/full/)
    await expect(store.check()).rejects.toThrow(/the database is full/)
    // Reading still works, and what was committed is whole.
    const seqs = (await store.after('a', 0, 10_000)).map((n) => n.seq)
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1))
    await store.close()
  })

  it('is freed by retention once full, though each notification is larger than a page and held by two users', async () => {
    // A prune updates each notification's refs: SQLite rewrites the row, taking its new overflow
    // pages before it frees the old ones, which a store at max_page_count has not got.
    const store = new SqliteStore(file, { maxBytes: 256 * 1024 })
    const body = 'x'.repeat(5000) // within the API's 8,192 characters
    let stored = 0
    let refusal: Error | undefined
    for (; stored < 500 && !refusal; stored++) {
      await store.publish({ userIds: ['ann', 'bob'] }, { title: `n${stored}`, body }).catch((error: Error) => {
        refusal = error
      })
    }
    stored-- // the refused one
    expect(refusal?.message).toMatch(/full/)
    await expect(store.check()).rejects.toThrow(/full/)
    expect(stored).toBeGreaterThan(10)
    let removed = 0
    for (let after: number | undefined = 0; after !== undefined; ) {
      const batch = await store.prune({ maxPerUser: 2 }, after)
      removed += batch.removed
      after = batch.next
    }
    expect(removed).toBe(2 * (stored - 2))
    // Room again, without a restart.
    await expect(store.publish({ userIds: ['ann'] }, { title: 'after', body })).resolves.toMatchObject({
      deliveries: [{ userId: 'ann', seq: stored + 1 }],
    })
    await expect(store.check()).resolves.toBeUndefined()
    await store.close()
  })

  describe('at its maxBytes, freed by retention pass after pass', () => {
    // A store that runs at its limit: a steady stream fills it between two passes. A pass at the
    // limit may grow the file into its headroom, and SQLite keeps max_page_count at least at the
    // file's size, so those pages stayed open to publishes: each pass started with a little less
    // headroom, until one failed as full, for good (a restart too).
    const MAX_BYTES = 256 * 1024
    /** Within the API's 8,192 characters: an overflow page each. */
    const BIG = 'x'.repeat(7000)

    /** Pages holding data, as another connection sees them. */
    const pagesInUse = () => {
      const raw = new Database(file, { readonly: true })
      try {
        return (raw.pragma('page_count', { simple: true }) as number) - (raw.pragma('freelist_count', { simple: true }) as number)
      } finally {
        raw.close()
      }
    }

    /** Publishes until the store refuses even a small one, each refusal saying it is full. */
    async function fill(store: SqliteStore, cycle: number): Promise<void> {
      const until = async (userIds: string[], body: string) => {
        for (let i = 0; ; i++) {
          const refused = await store.publish({ userIds }, { title: `c${cycle}-${i}`, body }).then(
            () => undefined,
            (error: Error) => error,
          )
          if (refused) return expect(refused.message).toMatch(/full/)
        }
      }
      await until(['ann', 'bob'], BIG)
      for (const size of [3000, 1000, 200]) await until(['carol'], 'c'.repeat(size))
    }

    /** A whole pass, batch after batch: resolves to the entries removed. */
    async function pass(store: SqliteStore): Promise<number> {
      let removed = 0
      for (let after: number | undefined = 0; after !== undefined; ) {
        const batch = await store.prune({ maxPerUser: 1 }, after)
        removed += batch.removed
        after = batch.next
      }
      return removed
    }

    it('frees the full store at every pass: publishes between passes do not use up the headroom', async () => {
      const store = new SqliteStore(file, { maxBytes: MAX_BYTES })
      try {
        // Without the fix, pass 64 failed as full.
        for (let cycle = 0; cycle < 100; cycle++) {
          await fill(store, cycle)
          expect(await pass(store), `pass ${cycle}`).toBeGreaterThan(0)
        }
      } finally {
        await store.close()
      }
    }, 30_000)

    it('answers no publish that leaves more pages in use than maxBytes, after a pass grew the file', async () => {
      const store = new SqliteStore(file, { maxBytes: MAX_BYTES })
      const maxPages = MAX_BYTES / 4096
      try {
        for (let cycle = 0; cycle < 6; cycle++) {
          await fill(store, cycle)
          expect(pagesInUse(), `cycle ${cycle}`).toBeLessThanOrEqual(maxPages)
          await pass(store)
        }
      } finally {
        await store.close()
      }
    })
  })

  it('refuses publishes and fails its check once its file is replaced: they would commit to a file no one opens again', async () => {
    const store = new SqliteStore(file)
    await store.publish({ userIds: ['a'] }, { title: 'n1', body: '' })
    copyFileSync(file, `${file}.copy`)
    renameSync(`${file}.copy`, file)
    await expect(store.publish({ userIds: ['a'] }, { title: 'n2', body: '' })).rejects.toThrow(/was replaced under the running server/)
    await expect(store.publish({ userIds: ['a'] }, { title: 'n3', body: '' }, undefined, { gather: true })).rejects.toThrow(/was replaced/)
    await expect(store.check()).rejects.toThrow(/was replaced/)
    await store.close()
  })

  it('once it found its file replaced, refuses every read with that reason, as a rejected promise (its connection is closed)', async () => {
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

  it('records the users new to it in one turn with one commit, each connect getting its state', async () => {
    const store = new SqliteStore(file)
    await store.publish({ userIds: ['known'] }, { title: 'n1', body: '' })
    const before = statSync(`${file}-wal`).size
    const users = Array.from({ length: 300 }, (_, i) => `new${i}`)
    const states = await Promise.all([...users, 'known', 'new0'].map((u) => store.touchUser(u)))
    expect(states.slice(0, 300)).toEqual(users.map(() => ({ latestSeq: 0, ackedSeq: 0, unreadCount: 0, floor: 0 })))
    expect(states.slice(300)).toEqual([
      { latestSeq: 1, ackedSeq: 0, unreadCount: 1, floor: 0 },
      { latestSeq: 0, ackedSeq: 0, unreadCount: 0, floor: 0 },
    ])
    // A commit each would have added a WAL frame (a 4 KiB page) or more per user.
    expect(statSync(`${file}-wal`).size - before).toBeLessThan(100 * 1024)
    expect((await store.publish({ userIds: ['new7'] }, { title: 'n2', body: '' })).deliveries).toEqual([{ userId: 'new7', seq: 1 }])
    await store.close()
    const db = new Database(file, { readonly: true })
    expect(db.prepare("SELECT count(*) AS n FROM users WHERE id LIKE 'new%'").get()).toEqual({ n: 300 })
    db.close()
  })

  it('cuts the WAL back to walSizeLimit after a checkpoint', async () => {
    const store = new SqliteStore(file, { walSizeLimit: 64 * 1024 })
    for (let i = 0; i < 200; i++) await store.publish({ userIds: ['a'] }, { title: `n${i}`, body: 'x'.repeat(8000) })
    expect(statSync(`${file}-wal`).size).toBeGreaterThan(1024 * 1024)
    // After the timer's checkpoint, the next write starts the WAL over and truncates it.
    await vi.waitFor(
      async () => {
        await store.publish({ userIds: ['a'] }, { title: 'later', body: '' })
        expect(statSync(`${file}-wal`).size).toBeLessThanOrEqual(64 * 1024)
      },
      { timeout: 5000, interval: 300 },
    )
    await store.close()
  })

  it('never throws from its checkpoint timer: a failure (a full disk) is kept for check()', async () => {
    vi.useFakeTimers()
    const store = new SqliteStore(file)
    const pragma = Database.prototype.pragma
    vi.spyOn(Database.prototype, 'pragma').mockImplementation(function (
      this: Database.Database,
      source: string,
      options?: Database.PragmaOptions,
    ) {
      if (source.startsWith('wal_checkpoint')) throw new Error('database or disk is full')
      return pragma.call(this, source, options)
    })
    expect(() => vi.advanceTimersByTime(3000)).not.toThrow()
    await expect(store.check()).rejects.toThrow(/WAL checkpoint failed: database or disk is full/)
    vi.restoreAllMocks()
    vi.advanceTimersByTime(1000)
    await expect(store.check()).resolves.toBeUndefined()
    vi.useRealTimers()
    await store.close()
  })
})

describe('SqliteStore: a database of schema 2', () => {
  it('is migrated: subscriptions keep their numbers, and a new one gets a number past any a pending job may reach', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-store-'))
    const file = join(dir, 'v2.db')
    new SqliteStore(file).close()
    // Back to schema 2: no retention columns, subscriptions without AUTOINCREMENT, no idempotency keys.
    const db = new Database(file)
    db.exec(`
      DROP TABLE deployment;
      DROP TABLE idempotency_keys;
      ALTER TABLE users DROP COLUMN floor_seq;
      ALTER TABLE notifications DROP COLUMN refs;
      DROP TABLE subscriptions;
      CREATE TABLE subscriptions (no INTEGER PRIMARY KEY, topic TEXT NOT NULL, user_no INTEGER NOT NULL, UNIQUE (topic, user_no));
      CREATE INDEX subscriptions_by_topic ON subscriptions (topic);
      CREATE INDEX subscriptions_by_user ON subscriptions (user_no);
      INSERT INTO users (no, id, latest_seq, unread) VALUES (1, 'a', 1, 1), (2, 'b', 0, 0);
      INSERT INTO notifications (no, id, title, body, priority, created_at, topic) VALUES (1, 'n1', 'news', '', 'medium', '2026-01-01T00:00:00.000Z', 'news');
      INSERT INTO inbox (user_no, seq, notification_no) VALUES (1, 1, 1);
      INSERT INTO subscriptions (no, topic, user_no) VALUES (1, 'news', 1), (2, 'other', 2);
      -- A job for the topic up to subscription 5: subscriptions 3 to 5 have ended since.
      INSERT INTO fanout_jobs (notification_no, topic, after, up_to) VALUES (1, 'news', 1, 5);
    `)
    db.pragma('user_version = 2')
    db.close()
    const store = new SqliteStore(file)
    try {
      await store.subscribe('b', ['news'], 10)
      const raw = new Database(file)
      expect(raw.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION)
      expect(raw.prepare('SELECT no, topic, user_no FROM subscriptions ORDER BY no').all()).toEqual([
        { no: 1, topic: 'news', user_no: 1 },
        { no: 2, topic: 'other', user_no: 2 },
        { no: 6, topic: 'news', user_no: 2 },
      ])
      expect(raw.prepare('SELECT no, refs FROM notifications').all()).toEqual([{ no: 1, refs: 1 }])
      raw.close()
      while (await store.fanOut());
      expect(await store.after('b', 0, 10)).toEqual([])
      expect(await store.touchUser('a')).toEqual({ latestSeq: 1, ackedSeq: 0, unreadCount: 1, floor: 0 })
    } finally {
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

/** Turns a current database back into schema 4: its notifications with a unique id. */
function toSchema4(db: Database.Database): void {
  db.exec(`CREATE TABLE n4 (no INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, title TEXT NOT NULL, body TEXT NOT NULL,
    priority TEXT NOT NULL, created_at TEXT NOT NULL, data TEXT, topic TEXT, refs INTEGER NOT NULL DEFAULT 0);
    INSERT INTO n4 SELECT * FROM notifications; DROP TABLE notifications; ALTER TABLE n4 RENAME TO notifications;
    DROP TABLE deployment;`)
  db.pragma('user_version = 4')
}

/**
 * A database with one notification for user a, taken back to schema `version` by `sql`, opened by a
 * store (which migrates it) for `check`; then of the current version. Removed afterwards.
 */
async function withOlderSchema(sql: string, version: number, check: (store: SqliteStore) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-store-'))
  const file = join(dir, 'inbox.db')
  try {
    const before = new SqliteStore(file)
    await before.publish({ userIds: ['a'] }, { title: 'kept', body: '' })
    await before.close()
    const db = new Database(file)
    db.exec(sql)
    db.pragma(`user_version = ${version}`)
    db.close()
    const store = new SqliteStore(file)
    try {
      await check(store)
    } finally {
      await store.close()
    }
    const raw = new Database(file)
    expect(raw.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION)
    raw.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe('SqliteStore: its deployment token', () => {
  it('is made once with the database: every store on the file has it, another file has another', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-store-'))
    const stores: SqliteStore[] = []
    try {
      const first = new SqliteStore(join(dir, 'a.db'))
      const beside = new SqliteStore(join(dir, 'a.db'))
      const other = new SqliteStore(join(dir, 'b.db'))
      stores.push(first, beside, other)
      expect(first.deployment).toMatch(/^[0-9a-f]{32}$/)
      expect(beside.deployment).toBe(first.deployment)
      expect(other.deployment).toMatch(/^[0-9a-f]{32}$/)
      expect(other.deployment).not.toBe(first.deployment)
      await first.close()
      const again = new SqliteStore(join(dir, 'a.db'))
      stores.push(again)
      expect(again.deployment).toBe(beside.deployment)
    } finally {
      for (const store of stores) await store.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('is given to a database of schema 5, its data whole', async () => {
    await withOlderSchema('DROP TABLE deployment', 5, async (store) => {
      expect(store.deployment).toMatch(/^[0-9a-f]{32}$/)
      expect((await store.after('a', 0, 10)).map((n) => n.title)).toEqual(['kept'])
    })
  })
})

describe('SqliteStore: a database of schema 4', () => {
  it('is migrated: its notifications lose the index on their ids, their data whole and marked by id still', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-store-'))
    const file = join(dir, 'inbox.db')
    try {
      const before = new SqliteStore(file)
      const kept = await before.publish({ userIds: ['a'] }, { title: 'kept', body: '' })
      await before.publish({ userIds: ['a'] }, { title: 'also kept', body: '', data: { n: 1 } })
      await before.close()
      const db = new Database(file)
      toSchema4(db)
      const indexes = () => db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'notifications'").all()
      expect(indexes()).toHaveLength(1)
      db.close()
      const store = new SqliteStore(file)
      try {
        expect((await store.after('a', 0, 10)).map((n) => [n.seq, n.title, n.data])).toEqual([
          [1, 'kept', undefined],
          [2, 'also kept', { n: 1 }],
        ])
        expect(await store.markRead('a', [kept.notification.id])).toMatchObject({ ids: [kept.notification.id], unreadCount: 1 })
      } finally {
        await store.close()
      }
      const raw = new Database(file)
      expect(raw.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION)
      expect(raw.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'notifications'").all()).toEqual([])
      raw.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('SqliteStore: a database of schema 4 near its maxBytes', () => {
  it('is migrated all the same: the copy of the notifications is made before the limit applies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-store-'))
    const file = join(dir, 'inbox.db')
    try {
      const before = new SqliteStore(file)
      for (let i = 0; i < 300; i++) await before.publish({ userIds: ['a'] }, { title: `n${i}`, body: 'x'.repeat(2000) })
      await before.close()
      const db = new Database(file)
      toSchema4(db)
      db.exec('VACUUM')
      const bytes = (db.pragma('page_count', { simple: true }) as number) * (db.pragma('page_size', { simple: true }) as number)
      db.close()
      // Room for the database and a third more: not for a second copy of its notifications.
      const store = new SqliteStore(file, { maxBytes: Math.floor(bytes * 1.3) })
      try {
        expect(await store.after('a', 0, 1000)).toHaveLength(300)
        await expect(store.check()).resolves.toBeUndefined()
      } finally {
        await store.close()
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('SqliteStore: a database of schema 3', () => {
  it('is migrated: it gains idempotency keys, its data whole', async () => {
    await withOlderSchema('DROP TABLE idempotency_keys; DROP TABLE deployment', 3, async (store) => {
      const key = { key: 'k', ttlMs: 60_000 }
      const first = await store.publish({ userIds: ['a'] }, { title: 'new', body: '' }, key)
      expect(await store.publish({ userIds: ['a'] }, { title: 'new', body: '' }, key)).toMatchObject({
        notification: { id: first.notification.id },
        replayed: true,
      })
      expect((await store.after('a', 0, 10)).map((n) => [n.seq, n.title])).toEqual([
        [1, 'kept'],
        [2, 'new'],
      ])
    })
  })
})

describe('SqliteStore: a database of belfry 0.1.0 (schema 1)', () => {
  it('is migrated on open, its data whole, each notification counting the entries that hold it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-store-'))
    const file = join(dir, 'old.db')
    const old = new Database(file)
    old.exec(`
      CREATE TABLE users (id TEXT PRIMARY KEY, latest_seq INTEGER NOT NULL DEFAULT 0, acked_seq INTEGER NOT NULL DEFAULT 0,
        unread INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
      CREATE TABLE notifications (id TEXT PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL, priority TEXT NOT NULL,
        created_at TEXT NOT NULL, data TEXT, topic TEXT);
      CREATE TABLE inbox (user_id TEXT NOT NULL, seq INTEGER NOT NULL, notification_id TEXT NOT NULL,
        read INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (user_id, seq)) WITHOUT ROWID;
      CREATE TABLE subscriptions (topic TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (topic, user_id)) WITHOUT ROWID;
      CREATE INDEX subscriptions_by_user ON subscriptions (user_id);
      INSERT INTO users VALUES ('ann', 2, 1, 1), ('bob', 1, 0, 1);
      INSERT INTO notifications VALUES ('n1', 'first', 'b1', 'high', '2026-11-01T00:00:00.000Z', '{"k":1}', NULL),
        ('n2', 'second', 'b2', 'medium', '2026-11-02T00:00:00.000Z', NULL, 'news');
      INSERT INTO inbox VALUES ('ann', 1, 'n1', 1), ('ann', 2, 'n2', 0), ('bob', 1, 'n2', 0);
      INSERT INTO subscriptions VALUES ('news', 'ann'), ('news', 'bob');
    `)
    old.close()
    const store = new SqliteStore(file)
    try {
      expect(await store.touchUser('ann')).toEqual({ latestSeq: 2, ackedSeq: 1, unreadCount: 1, floor: 0 })
      expect(await store.after('ann', 0, 10)).toEqual([
        {
          id: 'n1',
          seq: 1,
          title: 'first',
          body: 'b1',
          priority: 'high',
          timestamp: '2026-11-01T00:00:00.000Z',
          data: { k: 1 },
          read: true,
        },
        {
          id: 'n2',
          seq: 2,
          title: 'second',
          body: 'b2',
          priority: 'medium',
          timestamp: '2026-11-02T00:00:00.000Z',
          topic: 'news',
          read: false,
        },
      ])
      expect(await store.topics('bob')).toEqual(['news'])
      expect((await store.publish({ topic: 'news' }, { title: 'third', body: '' })).deliveries).toEqual([
        { userId: 'ann', seq: 3 },
        { userId: 'bob', seq: 2 },
      ])
      expect(await store.markRead('bob', ['n2'])).toMatchObject({ ids: ['n2'], unreadCount: 1 })
    } finally {
      await store.close()
    }
    const raw = new Database(file)
    expect(raw.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION)
    expect(raw.prepare("SELECT name FROM sqlite_master WHERE name LIKE '%_v1'").all()).toEqual([])
    expect(raw.prepare('SELECT id, refs FROM notifications ORDER BY no').all()).toEqual([
      { id: 'n1', refs: 1 },
      { id: 'n2', refs: 2 },
      { id: expect.any(String), refs: 2 },
    ])
    raw.close()
    // A database newer than this belfry is refused.
    const newer = new Database(file)
    newer.pragma(`user_version = ${SCHEMA_VERSION + 1}`)
    newer.close()
    expect(() => new SqliteStore(file)).toThrow(`schema is version ${SCHEMA_VERSION + 1}, newer than this belfry's (${SCHEMA_VERSION})`)
    rmSync(dir, { recursive: true, force: true })
  })
})
