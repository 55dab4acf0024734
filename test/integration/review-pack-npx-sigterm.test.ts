/**
 * README, "Deploying several processes", starts each production process as
 * `PORT=$port HOST=127.0.0.1 npx belfry-server &` and says "a process that
 * gets SIGTERM drains … and exits". Done as written, the SIGTERM of a deploy
 * (the shell's `kill %1`, `docker stop` of a `CMD ["npx","belfry-server"]`)
 * reaches `npx`, which passes it to npm's `sh -c belfry-server`: the shell dies,
 * and the node process of the server never hears of it — no drain, and it goes
 * on listening as an orphan. The test runs the snippet's own command, so that
 * a README that starts the process so that it gets the signal passes it.
 */
import { execFileSync, spawn } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { pack } from '../../scripts/pack.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const scratch: string[] = []
let dir: string
let serverPid: number | undefined

beforeAll(async () => {
  const out = mkdtempSync(join(tmpdir(), 'belfry-pack-'))
  scratch.push(out)
  const tarballs = await pack(`${out}/`)
  dir = mkdtempSync(join(tmpdir(), 'belfry-npx-'))
  scratch.push(dir)
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'scratch-npx', private: true, type: 'module' }))
  execFileSync(
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', '--ignore-scripts', tarballs['belfry-server']],
    { cwd: dir, stdio: 'pipe' },
  )
  // As packaging.test.ts: the repository's compiled better-sqlite3 in place of its install script's.
  cpSync(join(ROOT, 'node_modules/better-sqlite3/build'), join(dir, 'node_modules/better-sqlite3/build'), { recursive: true })
}, 120_000)

afterAll(() => {
  // The orphaned server, if the fault left one: its own pid, from its log.
  if (serverPid !== undefined && alive(serverPid)) process.kill(serverPid, 'SIGKILL')
  for (const d of scratch) rmSync(d, { recursive: true, force: true })
})

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** The command README's deploy snippet starts each process with (`for port in …; do <this> & done`). */
const README_COMMAND = /for port in [^;\n]+; do (.+?) & done/.exec(readFileSync(join(ROOT, 'README.md'), 'utf8'))?.[1]

it("a process started with README's deploy command drains and exits on SIGTERM (`kill $!`)", async () => {
  expect(README_COMMAND).toMatch(/belfry-server/)
  // As the snippet does, in the background, with its exported variables (SQLite here: no BELFRY_DATABASE_URL); $! is what a deploy signals.
  const child = spawn('sh', ['-c', `port=0; ${README_COMMAND} & echo "job $!"; wait`], {
    cwd: dir,
    env: {
      ...process.env,
      BELFRY_SECRET: 'review-npx-secret-0123456789',
      BELFRY_API_KEY: 'review-npx-key',
      BELFRY_DB: join(dir, 'belfry.db'),
      BELFRY_DRAIN_MS: '200',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  await expect.poll(() => /belfry server: http:\/\/\S+/.test(out), { timeout: 15_000 }).toBe(true)
  const url = /belfry server: (http:\/\/\S+?)\/?\s*$/m.exec(out)![1]!
  const job = Number(/^job (\d+)$/m.exec(out)![1])
  serverPid = (JSON.parse(out.split('\n').find((l) => l.includes('"listening"'))!) as { pid: number }).pid
  expect((await fetch(`${url}/healthz`)).status).toBe(200)

  process.kill(job, 'SIGTERM') // `kill $!`, as a deploy signals the process it started
  await exited

  // README: it drains (BELFRY_DRAIN_MS=200 here) and exits; allow far more than the drain takes.
  await expect
    .poll(() => alive(serverPid!), { timeout: 6000, message: `belfry-server (pid ${serverPid}) still running after SIGTERM` })
    .toBe(false)
  expect(out).toMatch(/"signal":"SIGTERM","drain":true/)
}, 40_000)
