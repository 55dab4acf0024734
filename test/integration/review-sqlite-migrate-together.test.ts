/**
 * Two processes of this version opening one SQLite file of an older schema at the same moment, as a
 * rolling deploy's processes on one machine do (README, "Draining": "on SQLite the successor can open
 * the same file (WAL mode)"; processes sharing one file share its deployment token). One migrates,
 * in one immediate transaction (docs/architecture.md: "migrated when the store opens, in one
 * transaction"); the other must wait for it and then see the result, however long the migration of a
 * large database takes (PostgresStore's processes wait for one up to an hour, MIGRATION_TIMEOUT_MS),
 * not fail to start.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { SCHEMA_VERSION } from '../../src/server/store/sqlite-schema.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Users and notifications of the 0.1.0 database: every user holds every notification (10 million inbox entries). */
const USERS = 100
const PER_USER = 100_000

/** belfry 0.1.0's schema (commit 03efa77, src/server/sqlite-store.ts), in WAL mode as it ran, filled set-wise. */
function buildV1(file: string): void {
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  db.exec(`
    CREATE TABLE users (id TEXT PRIMARY KEY, latest_seq INTEGER NOT NULL DEFAULT 0, acked_seq INTEGER NOT NULL DEFAULT 0,
      unread INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
    CREATE TABLE notifications (id TEXT PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL, priority TEXT NOT NULL,
      created_at TEXT NOT NULL, data TEXT, topic TEXT);
    CREATE TABLE inbox (user_id TEXT NOT NULL, seq INTEGER NOT NULL, notification_id TEXT NOT NULL,
      read INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (user_id, seq)) WITHOUT ROWID;
    CREATE TABLE subscriptions (topic TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (topic, user_id)) WITHOUT ROWID;
    CREATE INDEX subscriptions_by_user ON subscriptions (user_id);
    BEGIN;
    WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ${PER_USER})
      INSERT INTO notifications SELECT printf('n-%08d', n), 'title ' || n, 'body', 'medium',
        strftime('%Y-%m-%dT%H:%M:%fZ', 1790000000 + n, 'unixepoch'), NULL, NULL FROM s;
    WITH RECURSIVE u(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM u WHERE n < ${USERS})
      INSERT INTO users SELECT printf('u%05d', n), ${PER_USER}, ${PER_USER - 10}, ${PER_USER / 2} FROM u;
    INSERT INTO inbox SELECT u.id, n.rowid, n.id, n.rowid % 2 FROM users u CROSS JOIN notifications n;
    INSERT INTO subscriptions SELECT 'news', id FROM users;
    COMMIT;
  `)
  db.close()
}

interface Opened {
  ok: boolean
  error?: string
  deployment?: string
  user?: unknown
}

/** A process of this version that opens a SqliteStore on `file`, reads a user, says how it went, and exits. */
function opener(file: string): { child: ChildProcess; done: Promise<Opened> } {
  const script = `
    import { SqliteStore } from './src/server/store/sqlite.ts'
    try {
      const store = new SqliteStore(${JSON.stringify(file)})
      const user = await store.user('u00001')
      console.log(JSON.stringify({ ok: true, deployment: store.deployment, user }))
      await store.close()
    } catch (error) {
      console.log(JSON.stringify({ ok: false, error: error.message }))
    }
  `
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const done = new Promise<Opened>((resolve, reject) => {
    child.once('exit', (code) => {
      try {
        resolve(JSON.parse(out) as Opened)
      } catch {
        reject(new Error(`the opener exited with ${code}: ${out}`))
      }
    })
  })
  return { child, done }
}

describe('SqliteStore: two processes open a large database of belfry 0.1.0 at once', () => {
  let dir: string
  const children: ChildProcess[] = []
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })

  it('one migrates, the other waits for it and opens the migrated file: neither fails', async () => {
    dir = mkdtempSync(join(tmpdir(), 'belfry-migrate2-'))
    const file = join(dir, 'belfry.db')
    buildV1(file)
    const first = opener(file)
    children.push(first.child)
    // The first is migrating once its transaction's pages fill the WAL; the second starts then, as a
    // rolling deploy's second process does a moment after the first.
    const wal = `${file}-wal`
    for (let i = 0; i < 600 && !(existsSync(wal) && statSync(wal).size > 8 * 2 ** 20); i++) await sleep(50)
    expect(first.child.exitCode, 'the first process is still migrating').toBeNull()
    const second = opener(file)
    children.push(second.child)
    const [a, b] = await Promise.all([first.done, second.done])
    const expected = { latestSeq: PER_USER, ackedSeq: PER_USER - 10, unreadCount: PER_USER / 2, floor: 0 }
    expect(a.error).toBeUndefined()
    expect(a).toMatchObject({ ok: true, user: expected })
    expect(b.error, 'the second process waits for the migration instead of failing').toBeUndefined()
    expect(b, 'the second process waits for the migration instead of failing').toMatchObject({
      ok: true,
      deployment: a.deployment,
      user: expected,
    })
    const raw = new Database(file, { readonly: true })
    expect(raw.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION)
    expect(raw.prepare('SELECT count(*) AS n FROM deployment').get()).toEqual({ n: 1 })
    raw.close()
  }, 180_000)
})
