/**
 * Event-loop fairness of the fan-out loop (`#fanOutAll`) on SQLite: a broadcast larger than
 * `fanOutBatch` (1,000) goes on as a fan-out job, one short transaction per batch, so that a
 * publish need not wait for the whole audience. The server is one process: between two batches
 * its other sockets (heartbeats, deliveries, HTTP publishes, /healthz) must get their turn.
 */
import Database from 'better-sqlite3'
import { describe, expect, it, vi } from 'vitest'
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

/** `n` users in the store (as if each had connected or been published to once), written straight into its file. */
function seedUsers(t: TestServer, n: number): void {
  const db = new Database(t.database)
  db.pragma('busy_timeout = 5000')
  db.prepare(
    `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) INSERT INTO users (id) SELECT 'user-' || x FROM c`,
  ).run(n)
  db.close()
}

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
