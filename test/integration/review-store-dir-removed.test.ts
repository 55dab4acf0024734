/**
 * Review: the SQLite database's directory removed under a running server.
 *
 * README (Security, Storage): "A store that cannot take writes (full, read-only) makes
 * publishes and /healthz answer 503 — never a crash, never a 201 for what is not durable".
 *
 * When the database's directory is removed (a cleaned-up temp or volume directory, a
 * misdirected `rm -rf`), SQLite goes on writing to the unlinked files it holds open: the write
 * probe passes, /healthz says ok, and publishes answer 201 — for notifications that exist
 * nowhere on disk, gone at the next start.
 */
import { mkdirSync, rmSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { httpPublish, useServer } from '../helpers/server.js'

const start = useServer()

describe('the database directory removed under a running server', () => {
  it('answers no 201 for a publish that is not durable, and /healthz says the store is unavailable', async () => {
    const s = await start()
    expect((await httpPublish(s.url, { userId: 'ann', title: 'before', body: '' })).status).toBe(201)

    rmSync(dirname(s.database), { recursive: true, force: true })

    const after = await httpPublish(s.url, { userId: 'ann', title: 'after removal', body: '' })
    // The health check that follows the removal (past the 1 s a probe's result is reused).
    await new Promise((resolve) => setTimeout(resolve, 1100))
    const health = await fetch(`${s.url}/healthz`)

    // Where the data is: a server started again on the same path.
    await s.stop()
    mkdirSync(dirname(s.database), { recursive: true })
    await s.restart()
    const db = new Database(s.database, { readonly: true })
    const stored = db.prepare("SELECT count(*) AS n FROM notifications WHERE title = 'after removal'").get() as { n: number }
    db.close()

    // A 201 is a promise that the notification is durable.
    expect.soft({ status: after.status, storedAfterRestart: stored.n }).not.toEqual({ status: 201, storedAfterRestart: 0 })
    expect.soft(health.status, 'GET /healthz').toBe(503)
  })
})
