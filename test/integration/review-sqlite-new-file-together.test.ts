/**
 * Two processes of this version starting at the same moment on a SQLite file that does not exist
 * yet (the first start of processes that share one file, as a rolling deploy's do; README,
 * "Draining": "on SQLite the successor can open the same file (WAL mode)"). One creates the
 * schema, in one immediate transaction; the other waits for it and opens the same database (the
 * same deployment token): neither fails to start. A write of another process is waited for up to
 * the store's busy timeout (5 s); the moment they meet must not be refused at once.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** Files opened by both processes, each at the same moment: a meeting is a matter of milliseconds. */
const ROUNDS = 100
const ROUND_MS = 100

/**
 * A process of this version that opens a SqliteStore on `dir`/r<n>.db for each round, at `at` +
 * n × ROUND_MS by the clock (both processes read the same one), and prints each open's outcome: the
 * deployment token, or the error.
 */
function opener(dir: string, at: number): { child: ChildProcess; done: Promise<string[]> } {
  const script = `
    import { SqliteStore } from './src/server/store/sqlite.ts'
    const outcomes = []
    for (let round = 0; round < ${ROUNDS}; round++) {
      while (Date.now() < ${at} + round * ${ROUND_MS}) {}
      try {
        const store = new SqliteStore(${JSON.stringify(dir)} + '/r' + round + '.db')
        outcomes.push(store.deployment)
        await store.close()
      } catch (error) {
        outcomes.push('failed: ' + error.message)
      }
    }
    console.log(JSON.stringify(outcomes))
  `
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const done = new Promise<string[]>((resolve, reject) => {
    child.once('exit', (code) => {
      try {
        resolve(JSON.parse(out) as string[])
      } catch {
        reject(new Error(`the opener exited with ${code}: ${out}`))
      }
    })
  })
  return { child, done }
}

describe('SqliteStore: two processes start at once on a new file', () => {
  let dir: string
  const children: ChildProcess[] = []
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })

  it('both open it, on one schema and one deployment token: neither is refused with "database is locked"', async () => {
    dir = mkdtempSync(join(tmpdir(), 'belfry-newfile2-'))
    // Time for both to load before the first round.
    const at = Date.now() + 5000
    const a = opener(dir, at)
    const b = opener(dir, at)
    children.push(a.child, b.child)
    const [first, second] = await Promise.all([a.done, b.done])
    const failures = [...first, ...second].filter((outcome) => outcome.startsWith('failed'))
    expect(failures, `${failures.length} of ${2 * ROUNDS} opens failed`).toEqual([])
    // One database each round: the same token in both processes.
    expect(second).toEqual(first)
  }, 60_000)
})
