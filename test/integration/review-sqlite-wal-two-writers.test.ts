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
import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

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
