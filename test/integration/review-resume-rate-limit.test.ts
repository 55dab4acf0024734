/**
 * A replay goes in rounds of `replayBatch` (500): after each `replayed {more: true}` the client
 * must send `resume`, and docs/protocol.md ("Rounds") says a client catching up is slowed by the
 * user's byte budget, never refused. A long backlog takes one `resume` per 500 entries.
 */
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { rawClient, type TestServer, useServer } from '../helpers/server.js'

const start = useServer()

/** `n` short notifications in the user's inbox, written straight into the store's file (a publish each would take minutes). */
function seedBacklog(t: TestServer, userId: string, n: number): void {
  const db = new Database(t.database)
  db.pragma('busy_timeout = 5000')
  db.transaction(() => {
    db.prepare('INSERT INTO users (id) VALUES (?) ON CONFLICT DO NOTHING').run(userId)
    const user = db.prepare('SELECT no, latest_seq AS latest FROM users WHERE id = ?').get(userId) as { no: number; latest: number }
    const base = (db.prepare('SELECT coalesce(max(no), 0) AS m FROM notifications').get() as { m: number }).m
    db.prepare(
      `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
       INSERT INTO notifications (no, id, title, body, priority, created_at, refs)
       SELECT ? + x, lower(hex(randomblob(16))), 'New message', '', 'medium', strftime('%Y-%m-%dT%H:%M:%fZ'), 1 FROM c`,
    ).run(n, base)
    db.prepare(
      `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
       INSERT INTO inbox (user_no, seq, notification_no) SELECT ?, ? + x, ? + x FROM c`,
    ).run(n, user.no, user.latest, base)
    db.prepare('UPDATE users SET latest_seq = latest_seq + ?, unread = unread + ? WHERE no = ?').run(n, n, user.no)
  })()
  db.close()
}

describe('a long replay, with the default limits', () => {
  it('a client that answers each replayed {more: true} with resume catches up on 40,000 entries without being closed', async () => {
    const t = await start()
    const backlog = 40_000
    seedBacklog(t, 'bea', backlog)
    const c = await rawClient(t.wsUrl)
    let notifications = 0
    const caughtUp = new Promise<void>((resolve) => {
      c.ws.on('message', (data) => {
        const f = JSON.parse(data.toString()) as Record<string, unknown>
        if (f.type === 'notification') notifications++
        // As belfry's client does (notification-client.ts): the next round at once.
        if (f.type === 'replayed' && f.more === true) c.send({ type: 'resume', since: f.seq })
        if (f.type === 'replayed' && f.more === false) resolve()
      })
    })
    c.send({ type: 'auth', token: await t.token('bea'), since: 0 })
    const outcome = await Promise.race([
      caughtUp.then(() => 'caught up'),
      c.closed.then(({ code, reason }) => `closed ${code} (${reason})`),
    ])
    expect(outcome, `after ${notifications} notifications`).toBe('caught up')
    expect(notifications).toBe(backlog)
    c.close()
  })
})
