/**
 * Event-loop fairness of the replay for the article's client (no `since`, no `resume`): the server
 * pages it itself, a round after the socket has taken the one before. The server is one process;
 * while a loop runs without giving the event loop a turn, every other socket (heartbeats, other
 * users' deliveries, HTTP publishes, /healthz) waits.
 *
 * The client runs in a process of its own, as a real one does: the test process's event loop then
 * runs the server alone, and its longest stall is the server's.
 */
import { spawn } from 'node:child_process'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { type TestServer, useServer } from '../helpers/server.js'

const start = useServer()

/** The longest time between two turns of a 5 ms interval timer, from now until `stop()`. */
function stallProbe(): { stop(): number } {
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
function seedBacklog(t: TestServer, userId: string, n: number): void {
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

/**
 * The article's client in a child process: its auth frame (no `since`), then it reads until the
 * replay's last round (`replayed {more: false}`). Resolves with what it got.
 */
function articleClientElsewhere(url: string, userId: string, token: string): Promise<{ notifications: number; rounds: number }> {
  const code = `
    const WebSocket = require('ws')
    const ws = new WebSocket(${JSON.stringify(url)})
    let notifications = 0, rounds = 0
    ws.on('open', () => ws.send(${JSON.stringify(JSON.stringify({ type: 'auth', userId, token }))}))
    // It reads as fast as it can (a notification is counted, not parsed): the server, not the client, sets the pace.
    const NOTIFICATION = Buffer.from('{"type":"notification"')
    ws.on('message', (d) => {
      if (d.subarray(0, NOTIFICATION.length).equals(NOTIFICATION)) return void notifications++
      const f = JSON.parse(d.toString())
      if (f.type === 'replayed') rounds++
      if (f.type === 'replayed' && f.more === false) {
        process.stdout.write(JSON.stringify({ notifications, rounds }))
        ws.close()
      }
    })
    ws.on('close', () => process.exit(0))
    ws.on('error', (e) => { console.error(e); process.exit(1) })
  `
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', code], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
    })
    child.on('error', reject)
    child.on('exit', (status) =>
      out ? resolve(JSON.parse(out)) : reject(new Error(`the client exited (${status}) before its replay ended`)),
    )
  })
}

describe("the article's client's replay, with the default limits", () => {
  it('gives the event loop a turn between rounds: a 100,000-entry backlog holds it for no long stretch', async () => {
    const t = await start()
    const backlog = 100_000
    seedBacklog(t, 'ann', backlog)
    const probe = stallProbe()
    const got = await articleClientElsewhere(`ws://127.0.0.1:${t.port}/`, 'ann', await t.token('ann'))
    const longest = probe.stop()
    // Every entry arrived, in rounds of replayBatch (500).
    expect(got.notifications).toBe(backlog)
    expect(got.rounds).toBeGreaterThanOrEqual(backlog / 500)
    // A round is at most 500 entries (a few ms of work); between two, other sockets get their turn. The bound is
    // far above a round's cost: the replay of the backlog, a few hundred ms to over a second here, must not be one stretch.
    expect(longest, `the event loop stalled for ${Math.round(longest)} ms during the replay`).toBeLessThan(300)
  })
})
