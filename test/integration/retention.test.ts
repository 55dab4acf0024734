/**
 * Retention on a running server: the background pruner over a large store
 * while publishing goes on, the floor in `auth_success`, and the client's
 * "older notifications expired" hint.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { memoryStorage } from '../../src/client/storage.js'
import { SqliteStore } from '../../src/server/index.js'
import { ClientPool, range } from '../helpers/client.js'
import { API_KEY, authedClient, httpPublish, type TestServer, useServer } from '../helpers/server.js'

const DAY_MS = 86_400_000
const start = useServer()
const clients = new ClientPool()
const dirs: string[] = []
afterEach(() => {
  clients.closeAll()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** Runs a retention pass through the admin API; resolves with what it removed. */
async function prune(t: TestServer, body: unknown = {}): Promise<Record<string, number>> {
  const res = await fetch(`${t.url}/api/admin/prune`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  expect(res.status).toBe(200)
  return (await res.json()) as Record<string, number>
}

/** A client that resumes `userId` from `cursor`, as one that stored it would. */
function resuming(t: TestServer, userId: string, cursor: number) {
  const storage = memoryStorage()
  storage.setItem(`belfry:cursor:${userId}`, String(cursor))
  return clients.make({ url: t.wsUrl, token: () => t.token(userId), storage })
}

/** Each user's counters and what its inbox holds, recounted from the tables. */
function recount(db: Database.Database) {
  return db
    .prepare(
      `SELECT u.id, u.latest_seq AS latest, u.floor_seq AS floor, u.unread,
              count(i.seq) AS entries, min(i.seq) AS first, max(i.seq) AS last, coalesce(sum(i.read = 0), 0) AS unreadEntries
       FROM users u LEFT JOIN inbox i ON i.user_no = u.no GROUP BY u.no ORDER BY u.no`,
    )
    .all() as {
    id: string
    latest: number
    floor: number
    unread: number
    entries: number
    first: number
    last: number
    unreadEntries: number
  }[]
}

describe('retention on a running server (SQLite)', () => {
  it('prunes 100,000 notifications over 1,000 users to its limits while publishes go on: no hole, right counts, the expired hint, the kept ones once', async () => {
    const USERS = 1000
    const PER_USER = 100
    const dir = mkdtempSync(join(tmpdir(), 'belfry-retention-'))
    dirs.push(dir)
    const file = join(dir, 'big.db')
    new SqliteStore(file).close()
    // User uN has (N % 50) notifications ten days old, then recent ones; every third one is read.
    const db = new Database(file)
    const old = new Date(Date.now() - 10 * DAY_MS).toISOString()
    const recent = new Date(Date.now() - 3_600_000).toISOString()
    db.transaction(() => {
      const user = db.prepare('INSERT INTO users (no, id, latest_seq, unread) VALUES (?, ?, ?, ?)')
      const notification = db.prepare(
        "INSERT INTO notifications (no, id, title, body, priority, created_at, refs) VALUES (?, ?, ?, '', 'medium', ?, 1)",
      )
      const entry = db.prepare('INSERT INTO inbox (user_no, seq, notification_no, read) VALUES (?, ?, ?, ?)')
      for (let u = 1; u <= USERS; u++) {
        for (let seq = 1; seq <= PER_USER; seq++) {
          const no = (u - 1) * PER_USER + seq
          notification.run(no, `seed-${no}`, `u${u} #${seq}`, seq <= u % 50 ? old : recent)
          entry.run(u, seq, no, seq % 3 === 0 ? 1 : 0)
        }
        user.run(u, `u${u}`, PER_USER, PER_USER - Math.floor(PER_USER / 3))
      }
    })()
    expect((db.prepare('SELECT count(*) AS n FROM notifications').get() as { n: number }).n).toBe(USERS * PER_USER)

    // Small batches: the first pass takes a while, and the publishes below run during it.
    const t = await start({ store: new SqliteStore(file, { pruneBatch: 200 }), retention: { days: 7, maxPerUser: 80 } })
    const pruned = () => (db.prepare('SELECT count(*) AS n FROM users WHERE floor_seq > 0').get() as { n: number }).n
    let prunedAtFirstAnswer: number | undefined
    // Publishes from the start, while the pruner's first pass runs: each is answered 201, none waits long.
    const latencies: number[] = []
    const statuses: number[] = []
    let next = 0
    const publisher = async () => {
      while (next < 400) {
        const i = next++
        const began = performance.now()
        const { status } = await httpPublish(t.url, { userId: `u${1 + ((i * 37) % USERS)}`, title: `live ${i}`, body: '' })
        latencies.push(performance.now() - began)
        statuses.push(status)
        prunedAtFirstAnswer ??= pruned()
      }
    }
    await Promise.all(range(1, 8).map(publisher))
    expect(statuses.filter((s) => s !== 201)).toEqual([])
    expect(Math.max(...latencies)).toBeLessThan(2000)
    expect(prunedAtFirstAnswer).toBeLessThan(USERS) // the pass was still going
    // A pass asked for now runs after the background one: then every inbox is within the limits.
    await prune(t)

    const rows = recount(db)
    expect(rows).toHaveLength(USERS)
    for (const [k, r] of rows.entries()) {
      const u = k + 1
      // A prefix went: the inbox is floor + 1 … latest, without a hole.
      expect(r.entries, r.id).toBe(r.latest - r.floor)
      if (r.entries > 0) expect([r.first, r.last], r.id).toEqual([r.floor + 1, r.latest])
      expect(r.unread, r.id).toBe(r.unreadEntries)
      expect(r.latest - r.floor, r.id).toBeLessThanOrEqual(80)
      expect(r.floor, r.id).toBeGreaterThanOrEqual(Math.max(u % 50, r.latest - 80))
    }
    // Each notification that lost its last entry is gone with it, and refs count the entries that hold the rest.
    expect(
      db
        .prepare(
          `SELECT count(*) AS n FROM notifications n
           LEFT JOIN (SELECT notification_no AS no, count(*) AS entries FROM inbox GROUP BY notification_no) c ON c.no = n.no
           WHERE coalesce(c.entries, 0) <> n.refs OR n.refs = 0`,
        )
        .get(),
    ).toEqual({ n: 0 })

    // u7 had 7 old notifications and 100 in all (more if a live one went to it): its floor is at least 20.
    const u7 = rows[6]!
    expect(u7.floor).toBeGreaterThanOrEqual(20)
    const raw = await authedClient(t, 'u7', { since: 5 })
    expect(raw.of('auth_success')[0]).toMatchObject({ seq: u7.latest, oldestSeq: u7.floor, unreadCount: u7.unread })
    expect(raw.of('notification').map((n) => n.seq)).toEqual(range(u7.floor + 1, u7.latest))
    raw.close()

    const behind = resuming(t, 'u7', 5)
    behind.client.connect()
    await expect.poll(() => behind.events.notifications.length).toBe(u7.latest - u7.floor)
    expect(behind.events.statuses.find((s) => s.to === 'online')).toMatchObject({ expired: true })
    await new Promise((r) => setTimeout(r, 200))
    expect(behind.events.seqs()).toEqual(range(u7.floor + 1, u7.latest))
    // A cursor at the floor or above missed nothing: no hint.
    const current = resuming(t, 'u7', u7.floor)
    current.client.connect()
    await expect.poll(() => current.events.notifications.length).toBe(u7.latest - u7.floor)
    expect(current.events.statuses.find((s) => s.to === 'online')).not.toHaveProperty('expired')
    db.close()
  }, 60_000)
})

describe('retention: the floor on the wire', () => {
  it('says the floor in auth_success, replays from it for a cursor below it, and the client’s hint follows its cursor', async () => {
    const t = await start({ retention: { maxPerUser: 3 } })
    for (const i of range(1, 6)) await httpPublish(t.url, { userId: 'ann', title: `n${i}`, body: '' })
    const before = await authedClient(t, 'ann', { since: 1 })
    expect(before.of('auth_success')[0]).toMatchObject({ seq: 6, oldestSeq: 0, unreadCount: 6 })
    before.close()
    expect(await prune(t)).toEqual({ removed: 3, unread: 3, users: 1, notifications: 3 })
    const after = await authedClient(t, 'ann', { since: 1 })
    expect(after.of('auth_success')[0]).toMatchObject({ seq: 6, oldestSeq: 3, unreadCount: 3 })
    expect(after.of('notification').map((n) => n.seq)).toEqual([4, 5, 6])
    expect(after.of('replayed').at(-1)).toMatchObject({ more: false, seq: 6 })
    after.close()
    // No cursor (a new device): from the acknowledged seq, which is below the floor: the same, no hint.
    const fresh = clients.make({ url: t.wsUrl, token: () => t.token('ann') })
    fresh.client.connect()
    await expect.poll(() => fresh.events.seqs()).toEqual([4, 5, 6])
    expect(fresh.events.statuses.find((s) => s.to === 'online')).not.toHaveProperty('expired')
    const behind = resuming(t, 'ann', 2)
    behind.client.connect()
    await expect.poll(() => behind.events.seqs()).toEqual([4, 5, 6])
    expect(behind.events.statuses.filter((s) => s.to === 'online')).toEqual([expect.objectContaining({ expired: true })])
    // Live from there, with the pruner's floor below: nothing else changes.
    await httpPublish(t.url, { userId: 'ann', title: 'n7', body: '' })
    await expect.poll(() => behind.events.seqs()).toEqual([4, 5, 6, 7])
    expect(behind.client.unreadCount).toBe(4)
  })

  it('leaves an inbox whole without retention, and the start of a server with retention prunes at once', async () => {
    const t = await start()
    for (const i of range(1, 4)) await httpPublish(t.url, { userId: 'bob', title: `n${i}`, body: '' })
    const res = await fetch(`${t.url}/api/admin/prune`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}` } })
    expect(res.status).toBe(400)
    await t.stop()
    dirs.push(dirname(t.database))
    const again = await start({ database: t.database, retention: { maxPerUser: 1 } })
    await expect
      .poll(async () => {
        const c = await authedClient(again, 'bob', { since: 0 })
        c.close()
        return c.of('auth_success')[0]!.oldestSeq
      })
      .toBe(3)
  })
})
