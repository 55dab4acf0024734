/**
 * `npm run bench:drain`: a deploy of one process behind one address.
 * NotificationClients (the client's default backoff, 5 per user) connect
 * through a TCP proxy (the load balancer) to `belfry-server` A on a SQLite
 * file; successor B starts on the same file, the proxy sends new connections
 * to B, and A gets SIGTERM while notifications are published through the
 * address every 100 ms. Run twice: BELFRY_DRAIN_MS=0 (every socket closed at
 * once, as before drains) and the drain window. Reports A's exit, the
 * reconnects per 100 ms after SIGTERM and their busiest window, when the last
 * client was back, and what the clients missed or got twice.
 *
 * Environment: BENCH_DRAIN_CLIENTS (1000), BENCH_DRAIN_MS (5000). Prints a
 * markdown section and writes it into bench/RESULTS.md between its markers
 * (kept by `npm run bench`).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import WebSocket from 'ws'
import { memoryStorage, type Notification, NotificationClient } from '../src/index.js'
import { mintToken } from '../src/server/index.js'
import { ChaosProxy } from '../test/chaos/proxy.js'
import { spawnServer } from '../test/helpers/process.js'
import { DRAIN_SECTION, fmt, section, table } from './report.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const CLIENTS = Number(process.env.BENCH_DRAIN_CLIENTS) || 1000
const DRAIN_MS = Number(process.env.BENCH_DRAIN_MS) || 5000
const PER_USER = 5
const WINDOW_MS = 100
const SECRET = 'bench-drain-secret-0123456789'
const API_KEY = 'bench-drain-key-0123'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const log = (line: string) => process.stderr.write(`${line}\n`)

async function until(check: () => boolean, what: string, timeout = 60_000): Promise<void> {
  const end = Date.now() + timeout
  while (!check()) {
    if (Date.now() > end) throw new Error(`not within ${timeout} ms: ${what}`)
    await sleep(50)
  }
}

/** POSTs a publish on a connection of its own (a pooled one would stay on the old process). */
function post(base: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` }
    const req = request(new URL('/api/notifications', base), { method: 'POST', agent: false, headers }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
}

/** Counts per window of `width` ms from 0. */
export function histogram(times: readonly number[], width: number): number[] {
  const counts: number[] = []
  for (const t of times) {
    const i = Math.max(0, Math.floor(t / width))
    while (counts.length <= i) counts.push(0)
    counts[i] = (counts[i] ?? 0) + 1
  }
  return counts
}

interface Run {
  drainMs: number
  exitCode: number | null
  /** A's exit, ms after SIGTERM. */
  exitMs: number
  /** Reconnects per 100 ms after SIGTERM. */
  counts: number[]
  /** The last client back, ms after SIGTERM. */
  lastBackMs: number
  publishes: number
  lost: number
  duplicated: number
}

interface Client {
  user: string
  client: NotificationClient
  notifications: Notification[]
  back?: number
}

async function run(drainMs: number): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-bench-drain-'))
  const env = {
    BELFRY_SECRET: SECRET,
    BELFRY_API_KEY: API_KEY,
    BELFRY_DB: join(dir, 'belfry.db'),
    BELFRY_DRAIN_MS: String(drainMs),
    HOST: '127.0.0.1',
  }
  const port = (url: string) => Number(new URL(url).port)
  const a = await spawnServer(env)
  const proxy = new ChaosProxy({ host: '127.0.0.1', port: port(a.url) })
  const address = `127.0.0.1:${await proxy.listen()}`
  const users = Array.from({ length: Math.ceil(CLIENTS / PER_USER) }, (_, i) => `u${i}`)
  const clients: Client[] = []
  let b: Awaited<ReturnType<typeof spawnServer>> | undefined
  try {
    for (let i = 0; i < CLIENTS; i++) {
      const user = users[i % users.length]!
      const client = new NotificationClient({
        url: `ws://${address}/ws`,
        token: () => mintToken(SECRET, user),
        WebSocket,
        storage: memoryStorage(),
      })
      const c: Client = { user, client, notifications: [] }
      client.on('notification', (n) => c.notifications.push(n))
      clients.push(c)
    }
    for (const c of clients) c.client.connect()
    await Promise.all(clients.map((c) => c.client.ready()))
    // Publish k goes to a tenth of the users, in turn.
    const sent: string[][] = []
    const publish = async () => {
      const k = sent.length
      const to = users.filter((_, i) => i % 10 === k % 10)
      const status = await post(`http://${address}`, { userIds: to, title: `n${k}`, body: '', data: { k } })
      if (status !== 201) throw new Error(`publish #${k}: ${status}`)
      sent.push(to)
    }
    const expected = (user: string) => sent.flatMap((to, k) => (to.includes(user) ? [k] : []))

    // Every client holds a cursor before the deploy (one without starts where its user's other clients acked).
    for (let i = 0; i < 10; i++) await publish()
    await until(() => clients.every((c) => c.notifications.length >= expected(c.user).length), 'every client caught up on A')

    b = await spawnServer(env)
    proxy.target = { host: '127.0.0.1', port: port(b.url) }
    const t0 = performance.now()
    for (const c of clients) {
      c.client.on('status', (s) => {
        if (s.to === 'online') c.back = performance.now() - t0
      })
    }
    let exit: { code: number | null; ms: number } | undefined
    a.child.once('exit', (code) => {
      exit = { code, ms: performance.now() - t0 }
    })
    a.child.kill('SIGTERM')
    while (exit === undefined) {
      await publish()
      await sleep(WINDOW_MS)
    }
    for (let i = 0; i < 10; i++) await publish()
    await until(
      () => clients.every((c) => c.back !== undefined && c.notifications.length >= expected(c.user).length),
      'every client back and caught up',
    ).catch((error: unknown) => {
      log(String(error))
      // A few of those behind, for whoever looks into it.
      for (const c of clients.filter((c) => c.notifications.length < expected(c.user).length).slice(0, 5)) {
        const got = c.notifications.map((n) => `#${(n.data as { k: number }).k} (seq ${n.seq})`)
        log(`  ${c.user}, ${c.client.state}: wants #${expected(c.user).join(', #')}; got ${got.join(', ')}`)
      }
    })
    let lost = 0
    let duplicated = 0
    for (const c of clients) {
      const got = c.notifications.map((n) => (n.data as { k: number }).k)
      const want = new Set(expected(c.user))
      lost += [...want].filter((k) => !got.includes(k)).length
      duplicated += got.length - new Set(got).size
    }
    const back = clients.map((c) => c.back ?? Number.NaN)
    return {
      drainMs,
      exitCode: exit.code,
      exitMs: exit.ms,
      counts: histogram(
        back.filter((t) => Number.isFinite(t)),
        WINDOW_MS,
      ),
      lastBackMs: Math.max(...back),
      publishes: sent.length,
      lost: lost + back.filter((t) => !Number.isFinite(t)).length,
      duplicated,
    }
  } finally {
    for (const c of clients) c.client.close()
    a.child.kill('SIGKILL')
    b?.child.kill('SIGKILL')
    await proxy.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

const BARS = ' ▁▂▃▄▅▆▇█'

/** One character per window, scaled to `max`. */
const spark = (counts: readonly number[], max: number) =>
  counts.map((n) => BARS[n === 0 ? 0 : Math.max(1, Math.round((n / max) * (BARS.length - 1)))]).join('')

async function main(): Promise<string> {
  const load = loadavg()[0]!
  const runs: Run[] = []
  for (const drainMs of [0, DRAIN_MS]) {
    log(`drain: ${CLIENTS} clients, BELFRY_DRAIN_MS=${drainMs}…`)
    runs.push(await run(drainMs))
  }
  const max = Math.max(...runs.flatMap((r) => r.counts))
  const rows = runs.map((r) => {
    const peak = Math.max(...r.counts)
    return [
      String(r.drainMs),
      `${r.exitCode === 0 ? '0' : `exit ${r.exitCode}`} after ${fmt(r.exitMs, 0)} ms`,
      `${fmt(r.lastBackMs, 0)} ms`,
      `${peak} (${fmt((100 * peak) / CLIENTS, 1)}%)`,
      String(r.publishes),
      String(r.lost),
      String(r.duplicated),
    ]
  })
  return [
    DRAIN_SECTION.start,
    '## Drain on SIGTERM',
    '',
    `Generated by \`npm run bench:drain\` (bench/drain.ts) on ${new Date().toISOString()}, ${cpus().length} CPUs (load average ${fmt(load, 1)} at the start): ` +
      `${CLIENTS} NotificationClients (default backoff) behind one address; the process that holds them gets SIGTERM, ` +
      'its successor runs on the same SQLite file, and notifications are published through the address every 100 ms meanwhile.',
    '',
    table(
      ['BELFRY_DRAIN_MS', 'exit after SIGTERM', 'last client back', 'busiest 100 ms of reconnects', 'publishes', 'lost', 'duplicated'],
      rows,
    ),
    '',
    `Reconnects per ${WINDOW_MS} ms after SIGTERM (one character per window, █ = ${max}):`,
    '',
    '```',
    ...runs.map((r) => `${String(r.drainMs).padStart(6)} ms │${spark(r.counts, max)}│`),
    '```',
    '',
    ...runs.flatMap((r) => [`- ${r.drainMs} ms: ${r.counts.join(' ')}`]),
    DRAIN_SECTION.end,
  ].join('\n')
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const fresh = await main()
  process.stdout.write(`${fresh}\n`)
  const path = `${ROOT}bench/RESULTS.md`
  const results = readFileSync(path, 'utf8')
  const old = section(results, DRAIN_SECTION)
  writeFileSync(path, old ? results.replace(old, fresh) : `${results.trimEnd()}\n\n${fresh}\n`)
  process.exit(0)
}
