/** A test server's store filled straight in its SQLite file (a publish each would take minutes), and a probe of the event loop. */
import Database from 'better-sqlite3'
import type { TestServer } from './server.js'

/** The longest time between two turns of a 5 ms interval timer, from now until `stop()`. */
export function stallProbe(): { stop(): number } {
  let last = performance.now()
  let max = 0
  const timer = setInterval(() => {
    const now = performance.now()
    max = Math.max(max, now - last)
    last = now
  }, 5)
  return {
    stop() {
      clearInterval(timer)
      return Math.max(max, performance.now() - last)
    },
  }
}

/** `n` short notifications (a title and a little data) in the user's inbox, written straight into the store's file (a publish each would take minutes). */
export function seedBacklog(t: TestServer, userId: string, n: number): void {
  const db = new Database(t.database)
  db.pragma('busy_timeout = 5000')
  db.transaction(() => {
    db.prepare('INSERT INTO users (id) VALUES (?) ON CONFLICT DO NOTHING').run(userId)
    const user = db.prepare('SELECT no, latest_seq AS latest FROM users WHERE id = ?').get(userId) as { no: number; latest: number }
    const base = (db.prepare('SELECT coalesce(max(no), 0) AS m FROM notifications').get() as { m: number }).m
    db.prepare(
      `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
       INSERT INTO notifications (no, id, title, body, priority, created_at, data, refs)
       SELECT ? + x, lower(hex(randomblob(16))), 'New message', '', 'medium', strftime('%Y-%m-%dT%H:%M:%fZ'), '{"orderId":' || x || ',"items":[1,2,3],"url":"/orders/' || x || '"}', 1 FROM c`,
    ).run(n, base)
    db.prepare(
      `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
       INSERT INTO inbox (user_no, seq, notification_no) SELECT ?, ? + x, ? + x FROM c`,
    ).run(n, user.no, user.latest, base)
    db.prepare('UPDATE users SET latest_seq = latest_seq + ?, unread = unread + ? WHERE no = ?').run(n, n, user.no)
  })()
  db.close()
}

/** `n` users in the store (as if each had connected or been published to once), written straight into its file. */
export function seedUsers(t: TestServer, n: number): void {
  const db = new Database(t.database)
  db.pragma('busy_timeout = 5000')
  db.prepare(
    `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) INSERT INTO users (id) SELECT 'user-' || x FROM c`,
  ).run(n)
  db.close()
}
