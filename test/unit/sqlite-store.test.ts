import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SqliteStore } from '../../src/server/store/sqlite.js'

let dir: string
let file: string
let store: SqliteStore
/** Every store or raw handle opened by a test, closed in afterEach. */
const open: { close(): unknown }[] = []

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'belfry-store-'))
  file = join(dir, 'inbox.db')
  store = track(new SqliteStore(file))
})

afterEach(async () => {
  for (const handle of open.splice(0).reverse()) await handle.close()
  rmSync(dir, { recursive: true, force: true })
})

function track<T extends { close(): unknown }>(handle: T): T {
  open.push(handle)
  return handle
}

/** A second, raw connection on the same file, to look at (or tamper with) the tables. */
function raw(): Database.Database {
  return track(new Database(file))
}

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
    .prepare(
      'SELECT u.id, u.unread, u.latest_seq, (SELECT count(*) FROM inbox i WHERE i.user_id = u.id AND i.read = 0) AS actual FROM users u',
    )
    .all() as { id: string; unread: number; latest_seq: number; actual: number }[]
  expect(rows.length).toBeGreaterThan(0)
  for (const r of rows) expect({ id: r.id, unread: r.unread }).toEqual({ id: r.id, unread: r.actual })
}

async function seqsOf(userId: string): Promise<number[]> {
  return (await store.after(userId, 0, 10_000)).map((n) => n.seq)
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe('SqliteStore: sequence numbers', () => {
  it('keeps a gap-free per-user seq across interleaved publishes to different users', async () => {
    const published: Record<string, number[]> = { a: [], b: [], c: [] }
    const audiences = [['a'], ['b'], ['a', 'b'], ['c'], ['a', 'c'], ['b'], ['a', 'b', 'c'], ['a']]
    for (let round = 0; round < 5; round++) {
      for (const userIds of audiences) {
        const { deliveries } = await store.publish({ userIds }, note(`${round}:${userIds.join()}`))
        expect(deliveries.map((d) => d.userId).sort()).toEqual([...userIds].sort())
        for (const d of deliveries) published[d.userId]!.push(d.seq)
      }
    }
    for (const [user, seqs] of Object.entries(published)) {
      expect(seqs, user).toEqual(range(1, seqs.length))
      expect(await seqsOf(user), user).toEqual(seqs)
      expect((await store.touchUser(user)).latestSeq).toBe(seqs.length)
    }
  })

  // better-sqlite3 is synchronous: each publish commits before the next starts, so these run in call
  // order and cannot interleave. What is checked is the numbering, not isolation under concurrency.
  it('numbers publishes started in one tick per user 1, 2, 3, … in call order, without gaps', async () => {
    const results = await Promise.all(range(1, 50).map((i) => store.publish({ userIds: i % 2 ? ['a', 'b'] : ['a'] }, note(`n${i}`))))
    expect(results.flatMap((r) => r.deliveries.filter((d) => d.userId === 'a').map((d) => d.seq))).toEqual(range(1, 50))
    expect(await seqsOf('a')).toEqual(range(1, 50))
    expect(await seqsOf('b')).toEqual(range(1, 25))
  })

  it('counts a user listed twice in userIds once', async () => {
    const { deliveries } = await store.publish({ userIds: ['a', 'a', 'b', 'a'] }, note('dup'))
    expect(deliveries).toEqual([
      { userId: 'a', seq: 1 },
      { userId: 'b', seq: 1 },
    ])
    expect(await seqsOf('a')).toEqual([1])
  })
})

describe('SqliteStore: fan-out', () => {
  it('writes one inbox entry per known user for a broadcast, sharing one notification', async () => {
    await store.touchUser('a')
    await store.touchUser('b')
    await store.publish({ userIds: ['c'] }, note('direct'))
    const { notification, deliveries } = await store.publish({ broadcast: true }, note('all'))
    expect(deliveries.sort((x, y) => x.userId.localeCompare(y.userId))).toEqual([
      { userId: 'a', seq: 1 },
      { userId: 'b', seq: 1 },
      { userId: 'c', seq: 2 },
    ])
    for (const user of ['a', 'b', 'c']) {
      const [last] = await store.history(user, undefined, 1)
      expect(last).toMatchObject({ id: notification.id, title: 'all', read: false })
    }
    expect(await seqsOf('never-seen')).toEqual([])
    expect(snapshot(raw()).notifications).toBe(2)
  })

  it('writes a topic publish to subscribers only, with the topic set', async () => {
    await store.subscribe('a', 'news')
    await store.subscribe('b', 'news')
    await store.subscribe('b', 'sport')
    await store.touchUser('c')
    const { notification, deliveries } = await store.publish({ topic: 'news' }, note('headline'))
    expect(notification.topic).toBe('news')
    expect(deliveries.map((d) => d.userId).sort()).toEqual(['a', 'b'])
    expect(await store.after('a', 0, 10)).toMatchObject([{ id: notification.id, topic: 'news', seq: 1 }])
    expect(await seqsOf('c')).toEqual([])
    expect(await store.topics('b')).toEqual(['news', 'sport'])
    await store.unsubscribe('b', 'news')
    const second = await store.publish({ topic: 'news' }, note('later'))
    expect(second.deliveries).toEqual([{ userId: 'a', seq: 2 }])
    expect(await store.topics('b')).toEqual(['sport'])
    // A topic nobody follows still stores the notification, in no inbox.
    expect((await store.publish({ topic: 'empty' }, note('void'))).deliveries).toEqual([])
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

describe('SqliteStore: read state', () => {
  it('marks ids read in the given user inbox only', async () => {
    await store.touchUser('a')
    await store.touchUser('b')
    const shared = await store.publish({ broadcast: true }, note('shared'))
    const own = await store.publish({ userIds: ['a'] }, note('own'))
    const change = await store.markRead('a', [shared.notification.id, own.notification.id])
    expect(change).toEqual({
      ids: expect.arrayContaining([shared.notification.id, own.notification.id]),
      all: false,
      seq: 2,
      unreadCount: 0,
    })
    expect(change.ids).toHaveLength(2)
    expect((await store.after('b', 0, 10)).map((n) => n.read)).toEqual([false])
    expect((await store.touchUser('b')).unreadCount).toBe(1)
    // b cannot mark a's own notification (it is not in b's inbox).
    expect(await store.markRead('b', [own.notification.id])).toEqual({ ids: [], all: false, seq: 1, unreadCount: 1 })
    expect(await store.markRead('a', [shared.notification.id])).toEqual({ ids: [], all: false, seq: 2, unreadCount: 0 })
    expectCountersConsistent(raw())
  })

  it('ignores unknown ids and marks all up to the latest seq', async () => {
    for (const i of range(1, 4)) await store.publish({ userIds: ['a'] }, note(`n${i}`))
    expect(await store.markRead('a', ['nope'])).toEqual({ ids: [], all: false, seq: 4, unreadCount: 4 })
    expect(await store.markRead('a', 'all')).toEqual({ ids: [], all: true, seq: 4, unreadCount: 0 })
    expect((await store.after('a', 0, 10)).every((n) => n.read)).toBe(true)
    expect(await store.markRead('nobody', 'all')).toEqual({ ids: [], all: true, seq: 0, unreadCount: 0 })
  })

  it('keeps unread counters equal to the unread rows after mixed operations', async () => {
    const users = ['a', 'b', 'c', 'd']
    for (const u of users) await store.touchUser(u)
    await store.subscribe('a', 't')
    await store.subscribe('c', 't')
    const ids: Record<string, string[]> = { a: [], b: [], c: [], d: [] }
    const remember = (r: Awaited<ReturnType<SqliteStore['publish']>>) => {
      for (const d of r.deliveries) ids[d.userId]!.push(r.notification.id)
    }
    // A small deterministic pseudo-random mix of publishes and reads.
    let x = 7
    const rand = (n: number) => {
      x = (x * 1103515245 + 12345) % 2147483648
      return x % n
    }
    for (let step = 0; step < 120; step++) {
      const op = rand(6)
      const user = users[rand(users.length)]!
      if (op === 0) remember(await store.publish({ broadcast: true }, note(`b${step}`)))
      else if (op === 1) remember(await store.publish({ topic: 't' }, note(`t${step}`)))
      else if (op === 2) remember(await store.publish({ userIds: [user, users[rand(users.length)]!] }, note(`u${step}`)))
      else if (op === 3 && ids[user]!.length > 0) {
        const pick = [ids[user]![rand(ids[user]!.length)]!, ids[user]![rand(ids[user]!.length)]!, 'unknown-id']
        const change = await store.markRead(user, pick)
        expect(change.unreadCount).toBe((await store.after(user, 0, 10_000)).filter((n) => !n.read).length)
      } else if (op === 4 && rand(4) === 0) await store.markRead(user, 'all')
      else if (op === 5) await store.ack(user, rand(50))
    }
    const db = raw()
    expectCountersConsistent(db)
    for (const u of users) {
      const state = await store.touchUser(u)
      const rows = await store.after(u, 0, 10_000)
      expect(rows.map((n) => n.seq)).toEqual(range(1, state.latestSeq))
      expect(state.unreadCount).toBe(rows.filter((n) => !n.read).length)
    }
  })
})

describe('SqliteStore: ack', () => {
  it('moves the cursor forward only, never past the latest seq', async () => {
    for (const i of range(1, 3)) await store.publish({ userIds: ['a'] }, note(`n${i}`))
    expect(await store.ack('a', 2)).toBe(2)
    expect(await store.ack('a', 1)).toBe(2)
    expect(await store.ack('a', 9999)).toBe(3)
    await store.publish({ userIds: ['a'] }, note('n4'))
    expect((await store.touchUser('a')).ackedSeq).toBe(3)
    expect(await store.ack('a', 4)).toBe(4)
    expect(await store.ack('unknown', 5)).toBe(0)
  })
})

describe('SqliteStore: reading', () => {
  beforeEach(async () => {
    for (const i of range(1, 12)) {
      await store.publish({ userIds: ['a'] }, { title: `n${i}`, body: '', priority: i % 3 === 0 ? 'high' : 'low', data: { i } })
    }
    await store.publish({ userIds: ['b'] }, note('other'))
  })

  it('after() returns seq > cursor, oldest first, up to the limit', async () => {
    expect((await store.after('a', 0, 5)).map((n) => n.seq)).toEqual([1, 2, 3, 4, 5])
    expect((await store.after('a', 5, 5)).map((n) => n.seq)).toEqual([6, 7, 8, 9, 10])
    expect((await store.after('a', 10, 5)).map((n) => n.seq)).toEqual([11, 12])
    expect(await store.after('a', 12, 5)).toEqual([])
    expect(await store.after('a', 9999, 5)).toEqual([])
    const [third] = await store.after('a', 2, 1)
    expect(third).toEqual({
      id: expect.any(String),
      seq: 3,
      title: 'n3',
      body: '',
      priority: 'high',
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      data: { i: 3 },
      read: false,
    })
    expect(third).not.toHaveProperty('topic')
  })

  it('history() returns seq < before, newest first, up to the limit', async () => {
    expect((await store.history('a', undefined, 5)).map((n) => n.seq)).toEqual([12, 11, 10, 9, 8])
    expect((await store.history('a', 8, 5)).map((n) => n.seq)).toEqual([7, 6, 5, 4, 3])
    expect((await store.history('a', 3, 5)).map((n) => n.seq)).toEqual([2, 1])
    expect(await store.history('a', 1, 5)).toEqual([])
    expect((await store.history('b', undefined, 50)).map((n) => n.title)).toEqual(['other'])
    const [oldest] = await store.history('a', 2, 1)
    expect(oldest).toMatchObject({ seq: 1, title: 'n1', data: { i: 1 } })
  })
})

describe('SqliteStore: durability', () => {
  it('keeps everything when the file is reopened', async () => {
    await store.subscribe('a', 'news')
    const direct = await store.publish({ userIds: ['a', 'b'] }, { title: 'direct', body: 'x', priority: 'high', data: { k: [1, 'two'] } })
    await store.publish({ topic: 'news' }, note('topical'))
    await store.publish({ broadcast: true }, note('everyone'))
    await store.markRead('a', [direct.notification.id])
    await store.ack('a', 2)
    const before = {
      a: await store.after('a', 0, 100),
      b: await store.after('b', 0, 100),
      stateA: await store.touchUser('a'),
      stateB: await store.touchUser('b'),
    }
    await store.close()
    await store.close() // safe twice

    const reopened = track(new SqliteStore(file))
    expect(await reopened.after('a', 0, 100)).toEqual(before.a)
    expect(await reopened.after('b', 0, 100)).toEqual(before.b)
    expect(await reopened.touchUser('a')).toEqual({ latestSeq: 3, ackedSeq: 2, unreadCount: 2 })
    expect(await reopened.touchUser('b')).toEqual(before.stateB)
    expect(before.stateA).toEqual({ latestSeq: 3, ackedSeq: 2, unreadCount: 2 })
    expect(await reopened.topics('a')).toEqual(['news'])
    // Seqs continue where they stopped.
    expect((await reopened.publish({ userIds: ['a'] }, note('next'))).deliveries).toEqual([{ userId: 'a', seq: 4 }])
  })
})
