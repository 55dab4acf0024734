/**
 * Event-loop fairness: the server is one process, and while a loop of its runs without giving the event loop a
 * turn, every other socket (heartbeats, other users' deliveries) and request (publishes, /healthz) waits. With the
 * defaults on SQLite, whose calls return at once, a long loop must still yield between its steps.
 */
import { spawn } from 'node:child_process'
import Database from 'better-sqlite3'
import { describe, expect, it, vi } from 'vitest'
import { seedBacklog, seedUsers, stallProbe } from '../helpers/seed.js'
import { useServer } from '../helpers/server.js'

const start = useServer()

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

describe('a broadcast to a large audience, on SQLite with the defaults', () => {
  it('gives the event loop a turn between fan-out batches: 1,000,000 users hold it for no long stretch', async () => {
    const t = await start()
    const users = 1_000_000
    seedUsers(t, users)
    const db = new Database(t.database, { readonly: true })
    const jobs = () => (db.prepare('SELECT count(*) AS n FROM fanout_jobs').get() as { n: number }).n
    const entries = () => (db.prepare('SELECT count(*) AS n FROM inbox').get() as { n: number }).n
    try {
      const probe = stallProbe()
      const published = await t.server.broadcast({ title: 'Maintenance tonight', body: 'From 22:00 to 23:00' })
      expect(published.recipients).toBe(users)
      // A health check (a load balancer's) asked as the broadcast is answered: answered while the job still runs.
      const jobsWhenHealthAnswered = fetch(`${t.url}/healthz`).then(() => jobs())
      await vi.waitFor(() => expect(jobs()).toBe(0), { timeout: 25_000, interval: 50 })
      const longest = probe.stop()
      expect(entries()).toBe(users)
      // Each batch is 1,000 entries (a few ms); between two, the rest of the server runs.
      expect(longest, `the event loop stalled for ${Math.round(longest)} ms during the fan-out`).toBeLessThan(500)
      expect(await jobsWhenHealthAnswered, '/healthz was answered only once the whole fan-out was done').toBeGreaterThan(0)
    } finally {
      db.close()
    }
  })
})
