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
import { SqliteStore } from '../../src/server/index.js'
import { ClientPool, range } from '../helpers/client.js'
import { DAY_MS, type InboxCount, prune, pruneWhilePublishing, resuming } from '../helpers/retention.js'
import { API_KEY, authedClient, httpPublish, useServer } from '../helpers/server.js'

const start = useServer()
const clients = new ClientPool()
const dirs: string[] = []
afterEach(() => {
  clients.closeAll()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

describe('retention on a running server (SQLite)', () => {
  it('prunes 100,000 notifications over 1,000 users to its limits while publishes go on: no hole, right counts, the expired hint, the kept ones once', async () => {
    const users = 1000
    const perUser = 100
    const dir = mkdtempSync(join(tmpdir(), 'belfry-retention-'))
    dirs.push(dir)
    const file = join(dir, 'big.db')
    new SqliteStore(file).close()
    const db = new Database(file)
    const old = new Date(Date.now() - 10 * DAY_MS).toISOString()
    const recent = new Date(Date.now() - 3_600_000).toISOString()
    db.transaction(() => {
      const user = db.prepare('INSERT INTO users (no, id, latest_seq, unread) VALUES (?, ?, ?, ?)')
      const notification = db.prepare(
        "INSERT INTO notifications (no, id, title, body, priority, created_at, refs) VALUES (?, ?, ?, '', 'medium', ?, 1)",
      )
      const entry = db.prepare('INSERT INTO inbox (user_no, seq, notification_no, read) VALUES (?, ?, ?, ?)')
      for (let u = 1; u <= users; u++) {
        for (let seq = 1; seq <= perUser; seq++) {
          const no = (u - 1) * perUser + seq
          notification.run(no, `seed-${no}`, `u${u} #${seq}`, seq <= u % 50 ? old : recent)
          entry.run(u, seq, no, seq % 3 === 0 ? 1 : 0)
        }
        user.run(u, `u${u}`, perUser, perUser - Math.floor(perUser / 3))
      }
    })()
    expect(db.prepare('SELECT count(*) AS n FROM notifications').get()).toEqual({ n: users * perUser })
    const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n
    await pruneWhilePublishing(
      start,
      clients,
      {
        // Small batches: the first pass takes a while, and the publishes run during it.
        store: new SqliteStore(file, { pruneBatch: 200 }),
        users,
        perUser,
        recount: async () =>
          db
            .prepare(
              `SELECT u.id, u.latest_seq AS latest, u.floor_seq AS floor, u.unread, count(i.seq) AS entries, min(i.seq) AS first,
                    max(i.seq) AS last, coalesce(sum(i.read = 0), 0) AS unreadEntries
             FROM users u LEFT JOIN inbox i ON i.user_no = u.no GROUP BY u.no ORDER BY u.no`,
            )
            .all() as InboxCount[],
        badRefs: async () =>
          count(
            `SELECT count(*) AS n FROM notifications n
           LEFT JOIN (SELECT notification_no AS no, count(*) AS entries FROM inbox GROUP BY notification_no) c ON c.no = n.no
           WHERE coalesce(c.entries, 0) <> n.refs OR n.refs = 0`,
          ),
        pruned: async () => count('SELECT count(*) AS n FROM users WHERE floor_seq > 0'),
      },
      400,
    )
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
    const behind = resuming(clients, t, 'ann', 2)
    behind.client.connect()
    await expect.poll(() => behind.events.seqs()).toEqual([4, 5, 6])
    expect(behind.events.statuses.filter((s) => s.to === 'online')).toEqual([expect.objectContaining({ expired: true })])
    // Live from there, with the pruner's floor below: nothing else changes.
    await httpPublish(t.url, { userId: 'ann', title: 'n7', body: '' })
    await expect.poll(() => behind.events.seqs()).toEqual([4, 5, 6, 7])
    expect(behind.client.unreadCount).toBe(4)
  })

  it('says expired once for an inbox a pass emptied: the client resumes from the floor, and a reconnect after it does not say it again', async () => {
    const t = await start()
    for (const i of [1, 2, 3]) expect((await httpPublish(t.url, { userId: 'ann', title: `n${i}`, body: '' })).status).toBe(201)
    // Everything ann has is older than ~9 ms: a pass by age empties the inbox (floor = latest = 3).
    await new Promise((r) => setTimeout(r, 30))
    expect(await prune(t, { days: 1e-7 })).toMatchObject({ removed: 3 })
    const raw = await authedClient(t, 'ann', { since: 1 })
    expect(raw.of('auth_success')[0]).toMatchObject({ seq: 3, oldestSeq: 3, unreadCount: 0 })
    raw.close()

    // A device that had seen seq 1: seqs 2 and 3 expired before it got them. It is told so.
    const behind = resuming(clients, t, 'ann', 1)
    behind.client.connect()
    await behind.client.ready()
    expect(behind.events.statuses.filter((s) => s.to === 'online')).toEqual([expect.objectContaining({ expired: true })])

    // The connection drops (a server restart, a network blip) and the client reconnects. Nothing
    // more was removed: it resumed from the floor last time, so there is no new loss to report.
    await t.restart()
    await expect.poll(() => behind.events.count('online'), { timeout: 10_000 }).toBe(2)
    const onlines = behind.events.statuses.filter((s) => s.to === 'online')
    expect(onlines[1], 'the second online status repeats the hint for the same, already reported loss').not.toHaveProperty('expired')
  })

  it('tells a connected user the unread count a pass lowered, on every connection, and no one else', async () => {
    const t = await start()
    for (const i of range(1, 5)) await httpPublish(t.url, { userId: 'ann', title: `n${i}`, body: '' })
    await httpPublish(t.url, { userId: 'bob', title: 'b1', body: '' })
    const tabs = [
      await clients.online({ url: t.wsUrl, token: () => t.token('ann') }),
      await clients.online({ url: t.wsUrl, token: () => t.token('ann') }),
    ]
    const bob = await clients.online({ url: t.wsUrl, token: () => t.token('bob') })
    for (const tab of tabs) expect(tab.client.unreadCount).toBe(5)
    const reads = tabs.map(() => [] as unknown[])
    for (const [i, tab] of tabs.entries()) tab.client.on('read', (e) => void reads[i]!.push(e))
    const bobReads: unknown[] = []
    bob.client.on('read', (e) => void bobReads.push(e))
    expect(await prune(t, { maxPerUser: 2 })).toMatchObject({ removed: 3, unread: 3, users: 1 })
    for (const tab of tabs) await expect.poll(() => tab.client.unreadCount).toBe(2)
    for (const r of reads) expect(r).toEqual([{ ids: [], all: false, seq: 5, unreadCount: 2 }])
    expect(bob.client.unreadCount).toBe(1)
    expect(bobReads).toEqual([])
  })

  // Regression: a full page whose last seq was above 1 always said `next`, so once retention had removed
  // what was older the last page still promised one more (the client asked and got an empty page).
  it('ends history at the floor: the page holding the oldest kept entry has no next', async () => {
    const s = await start({ retention: { maxPerUser: 5 } })
    for (const i of range(1, 10)) expect((await httpPublish(s.url, { userId: 'ann', title: `n${i}`, body: '' })).status).toBe(201)
    const pruned = await fetch(`${s.url}/api/admin/prune`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}` } })
    expect(await pruned.json()).toMatchObject({ removed: 5 })
    const c = await authedClient(s, 'ann')
    c.send({ type: 'history', limit: 3, requestId: 'h1' })
    const first = await c.next((f) => f.type === 'history' && f.requestId === 'h1')
    expect([(first.items as { seq: number }[]).map((n) => n.seq), first.next]).toEqual([[10, 9, 8], 8])
    c.send({ type: 'history', before: 8, limit: 3, requestId: 'h2' })
    const last = await c.next((f) => f.type === 'history' && f.requestId === 'h2')
    expect((last.items as { seq: number }[]).map((n) => n.seq)).toEqual([7, 6])
    expect(last.next).toBeUndefined()
    c.send({ type: 'history', limit: 5, requestId: 'h3' })
    const exact = await c.next((f) => f.type === 'history' && f.requestId === 'h3')
    expect([(exact.items as { seq: number }[]).map((n) => n.seq), exact.next]).toEqual([[10, 9, 8, 7, 6], undefined])
    c.close()
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
