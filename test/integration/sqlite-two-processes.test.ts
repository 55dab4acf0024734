/**
 * Two processes on one SQLite file, as in a rolling deploy's overlap (README, "Operating belfry": the
 * successor opens the same file while the old process drains, and a draining process still takes
 * publishes). Each process here is a child of its own (or the test's NotificationServer beside one).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, existsSync, mkdtempSync, openSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
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

/** A process with its own SqliteStore on `file`, publishing `rate` targeted notifications a second until `stop` exists. */
function writer(file: string, stop: string, name: string, rate: number): { child: ChildProcess; done: Promise<string> } {
  const script = `
    import { existsSync } from 'node:fs'
    import { SqliteStore } from './src/server/store/sqlite.ts'
    const store = new SqliteStore(${JSON.stringify(file)}, { walSizeLimit: 1024 * 1024 })
    const started = Date.now()
    let n = 0
    while (!existsSync(${JSON.stringify(stop)})) {
      const due = Math.floor(((Date.now() - started) * ${rate}) / 1000)
      while (n < due) {
        await store.publish({ userIds: ['user-' + (n % 50)] }, { title: ${JSON.stringify(name)} + ' ' + n, body: 'x'.repeat(200) })
        n++
      }
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
    await store.close()
    console.log(JSON.stringify({ published: n }))
  `
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const done = new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`writer ${name} exited with ${code}`))))
  })
  return { child, done }
}

/** The WAL header's salts (bytes 16–23): both change each time SQLite starts the WAL over. */
function walSalts(wal: string): string | undefined {
  if (!existsSync(wal)) return undefined
  const fd = openSync(wal, 'r')
  try {
    const header = Buffer.alloc(32)
    if (readSync(fd, header, 0, 32, 0) < 32) return undefined
    return header.subarray(16, 24).toString('hex')
  } finally {
    closeSync(fd)
  }
}

/**
 * Two processes on one SQLite file, as in a rolling deploy's overlap (README, "Operating belfry":
 * the successor opens the same file while the old process drains, and a draining process still
 * takes publishes). The store turns SQLite's own checkpoints off (`wal_autocheckpoint = 0`) and
 * folds the WAL back on a timer every second; the WAL is bounded (README, "Security": "the SQLite
 * WAL (cut back after checkpoints)"; `walSizeLimit`: "Size the WAL file is cut back to after each
 * checkpoint").
 *
 * SQLite starts a WAL over (and cuts it to `journal_size_limit`) only when a write begins while the
 * WAL is wholly folded back. One process checkpoints between its own writes, so its next write
 * starts the WAL over. With a second process writing all the time, a passive checkpoint never
 * folds back what the other wrote during it: the WAL is never started over and grows with every
 * commit for as long as both write.
 *
 * This guards that with two processes writing steadily the WAL is still started over (its header's
 * salt changes, as it does about every second with one process) and stays bounded.
 */
describe('SqliteStore: two processes writing on one file', () => {
  let dir: string
  const children: ChildProcess[] = []
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })

  it('the WAL is still started over and cut back while both write steadily', async () => {
    dir = mkdtempSync(join(tmpdir(), 'belfry-wal2-'))
    const file = join(dir, 'belfry.db')
    const stop = join(dir, 'stop')
    const a = writer(file, stop, 'a', 1500)
    const b = writer(file, stop, 'b', 1500)
    children.push(a.child, b.child)
    // Both open and writing (the WAL exists), then a while for their checkpoint timers to run.
    const wal = `${file}-wal`
    for (let i = 0; i < 100 && !existsSync(wal); i++) await sleep(100)
    await sleep(1500)
    // Over 6 s of both writing, with a checkpoint every second in each process.
    const salts = new Set<string>()
    let largest = 0
    for (let i = 0; i < 60; i++) {
      const s = walSalts(wal)
      if (s) salts.add(s)
      largest = Math.max(largest, existsSync(wal) ? statSync(wal).size : 0)
      await sleep(100)
    }
    writeFileSync(stop, '')
    const published = (await Promise.all([a.done, b.done])).map((out) => (JSON.parse(out) as { published: number }).published)
    const seen = { startedOver: salts.size - 1, largestWalMiB: Math.round(largest / 2 ** 20), published }
    // One process on the same load starts its WAL over about once a second; 6 s should see several.
    expect(seen.startedOver, JSON.stringify(seen)).toBeGreaterThanOrEqual(2)
  }, 30_000)
})

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

/** A child process: runs `script` (an ES module, from the repository's root) and resolves its last stdout line as JSON. */
function child(script: string): { child: ChildProcess; done: Promise<unknown> } {
  const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  c.stdout?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const done = new Promise<unknown>((resolve, reject) => {
    c.once('exit', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1) ?? ''))
      } catch {
        reject(new Error(`the child exited with ${code}: ${out}`))
      }
    })
  })
  return { child: c, done }
}

describe('SqliteStore: processes that start together on one file', () => {
  let dir: string
  const children: ChildProcess[] = []
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })

  it('on a new file: both open it, on one schema and one deployment token (the switch to WAL mode is tried again)', async () => {
    // Regression: SQLite refuses one of two processes switching a new file to WAL mode at once, without its busy
    // wait: "database is locked" in about one open of four.
    dir = mkdtempSync(join(tmpdir(), 'belfry-new-file-'))
    const rounds = 40
    const at = Date.now() + 3000 // time for both to load
    const opener = () =>
      child(`
        import { SqliteStore } from './src/server/store/sqlite.ts'
        const outcomes = []
        for (let round = 0; round < ${rounds}; round++) {
          while (Date.now() < ${at} + round * 60) {}
          try {
            const store = new SqliteStore(${JSON.stringify(dir)} + '/r' + round + '.db')
            outcomes.push(store.deployment)
            await store.close()
          } catch (error) {
            outcomes.push('failed: ' + error.message)
          }
        }
        console.log(JSON.stringify(outcomes))
      `)
    const a = opener()
    const b = opener()
    children.push(a.child, b.child)
    const [first, second] = (await Promise.all([a.done, b.done])) as string[][]
    expect([...first!, ...second!].filter((o) => o.startsWith('failed'))).toEqual([])
    expect(second).toEqual(first) // one database each round
  }, 30_000)

  it('while another process migrates it longer than a write waits: it waits for the migration, then opens', async () => {
    // Regression: a process opening the file while another migrated a large one (10 million entries: about 10 s)
    // gave up after the 5 s a write waits: "database is locked", and belfry-server exited. The other here holds
    // the write lock on a file of no schema yet for 6.5 s, as a migration does, and makes nothing.
    dir = mkdtempSync(join(tmpdir(), 'belfry-migrating-'))
    const file = join(dir, 'belfry.db')
    const holder = child(`
      import Database from 'better-sqlite3'
      const db = new Database(${JSON.stringify(file)})
      db.pragma('journal_mode = WAL')
      db.exec('BEGIN IMMEDIATE')
      console.log(JSON.stringify('holding'))
      setTimeout(() => { db.exec('COMMIT'); db.close() }, 6500)
    `)
    children.push(holder.child)
    await new Promise<void>((resolve) => holder.child.stdout?.once('data', () => resolve()))
    const opened = child(`
      import { SqliteStore } from './src/server/store/sqlite.ts'
      try {
        const store = new SqliteStore(${JSON.stringify(file)})
        console.log(JSON.stringify({ ok: true, deployment: store.deployment }))
        await store.close()
      } catch (error) {
        console.log(JSON.stringify({ ok: false, error: error.message }))
      }
    `)
    children.push(opened.child)
    const outcome = await opened.done
    const reader = new Database(file, { readonly: true })
    const { token } = reader.prepare('SELECT token FROM deployment').get() as { token: string }
    reader.close()
    expect(outcome).toEqual({ ok: true, deployment: token })
  }, 30_000)
})
