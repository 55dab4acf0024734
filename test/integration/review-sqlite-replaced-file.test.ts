/**
 * A SQLite file replaced under a running process (README, "Security": a store whose file is
 * "removed or replaced under the running server" answers 503, "never a 201 for what is not
 * durable"), say a backup restored with a rename, and a successor started on the restored file
 * while the old process still runs: a rolling deploy's overlap (README, "Operating belfry").
 *
 * Only the database file was replaced: its WAL and shared-memory index (`belfry.db-wal`,
 * `belfry.db-shm`) are the same files for both processes. The old process refuses publishes, but
 * its checkpoint timer goes on folding the shared WAL back into the file it opened, which no one
 * will open again: the successor's commits are marked folded back without ever reaching the
 * restored file, and the restored file gets the old one's pages.
 *
 * This guards that what the successor answered 201 is in the restored file once both have
 * stopped, and that the file is whole.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { NotificationServer } from '../../src/server/index.js'
import { API_KEY, httpPublish, SECRET } from '../helpers/server.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The old process: a SqliteStore on `file` that publishes five notifications to ann, says `ready`, and then only runs. */
function oldProcess(file: string): { child: ChildProcess; ready: Promise<void> } {
  const script = `
    import { SqliteStore } from './src/server/store/sqlite.ts'
    const store = new SqliteStore(${JSON.stringify(file)})
    for (let i = 1; i <= 5; i++) await store.publish({ userIds: ['ann'] }, { title: 'a' + i, body: '' })
    console.log('ready')
    setInterval(() => {}, 1000)
  `
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const ready = new Promise<void>((resolve, reject) => {
    let out = ''
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('ready')) resolve()
    })
    child.once('exit', (code) => reject(new Error(`the old process exited with ${code}`)))
  })
  return { child, ready }
}

describe('SqliteStore: its file replaced while it runs, and a successor on the replacement', () => {
  let dir: string
  const children: ChildProcess[] = []
  const servers: NotificationServer[] = []
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL')
    for (const s of servers.splice(0)) await s.close().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  })

  it("keeps the successor's publishes answered 201 in the restored file, whole, while the old process lives on", async () => {
    dir = mkdtempSync(join(tmpdir(), 'belfry-replaced-'))
    const file = join(dir, 'belfry.db')
    const old = oldProcess(file)
    children.push(old.child)
    await old.ready
    await sleep(1500) // its checkpoint timer has folded its WAL back

    // A restore: a consistent copy of the database, renamed over the file.
    const copy = new Database(file)
    copy.exec(`VACUUM INTO '${file}.restore'`)
    copy.close()
    renameSync(`${file}.restore`, file)

    // The successor, on the restored file, beside the old process.
    const successor = new NotificationServer({ secret: SECRET, apiKey: API_KEY, database: file, logger: pino({ level: 'silent' }) })
    servers.push(successor)
    const { port } = await successor.listen(0, '127.0.0.1')
    const answered: number[] = []
    for (let i = 1; i <= 20; i++) {
      const res = await httpPublish(`http://127.0.0.1:${port}`, { userId: 'bob', title: `b${i}`, body: '' })
      if (res.status === 201) answered.push(i)
      await sleep(100) // over two seconds: both processes' checkpoint timers run meanwhile
    }
    expect(answered).toHaveLength(20)

    // The old process goes (as at the end of an overlap), then the successor.
    old.child.kill('SIGKILL')
    await new Promise((resolve) => old.child.once('exit', resolve))
    await successor.close()

    const db = new Database(file, { readonly: true })
    try {
      const bob = db
        .prepare(
          `SELECT n.title FROM inbox i JOIN users u ON u.no = i.user_no JOIN notifications n ON n.no = i.notification_no
           WHERE u.id = 'bob' ORDER BY i.seq`,
        )
        .all() as { title: string }[]
      const whole = db.pragma('quick_check', { simple: true })
      expect({ whole, bob: bob.map((r) => r.title) }).toEqual({ whole: 'ok', bob: answered.map((i) => `b${i}`) })
    } finally {
      db.close()
    }
  }, 30_000)
})
