/**
 * One server under test, in its own process, driven by run.ts over IPC:
 * start, publish (broadcast, to one user, a steady stream, a backlog), report
 * RSS, restart on the same port (and database), stop.
 *
 * Run with `--expose-gc` so that RSS is read after a full collection.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import Database from 'better-sqlite3'
import { pino } from 'pino'
import { NotificationServer, SqliteStore, type Store } from '../src/server/index.js'
import { PlainWsServer } from './plain-ws-server.js'
import { now, serve } from './rpc.js'
import { API_KEY, type BenchServer, type Kind, payload, SECRET } from './shared.js'
import { SocketIoServer } from './socketio-server.js'

let kind: Kind = 'ws'
let server: BenchServer | undefined
let port = 0
let dir: string | undefined
/** Lines pino wrote at warn or above (slow consumers and the like). */
const warnings: string[] = []
/** Time belfry spent in each store method (synchronous SQLite work), since the last reset. */
let storeTime: Record<string, { calls: number; ms: number }> = {}

function addStoreTime(what: string, ms: number): void {
  const entry = storeTime[what] ?? { calls: 0, ms: 0 }
  entry.calls++
  entry.ms += ms
  storeTime[what] = entry
}

/** A store method is running (its synchronous part). */
let inStoreCall = false

/**
 * The store, with the time of each call recorded (better-sqlite3 does its work
 * before the promise is returned), and the time of the transactions it runs
 * outside any call: writes it gathers for the end of a turn of the event loop
 * (acks, new users, the API's publishes), as "gathered writes".
 */
function timed(store: Store): Store {
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        const t = now()
        inStoreCall = true
        try {
          return value.apply(target, args)
        } finally {
          inStoreCall = false
          addStoreTime(String(prop), now() - t)
        }
      }
    },
  })
}

/** Times the transactions of stores made after this: those outside a store call count as gathered writes. */
function timeGatheredWrites(): void {
  const make = Database.prototype.transaction
  Database.prototype.transaction = function (this: Database.Database, fn) {
    const tx = make.call(this, fn)
    const wrap = (run: (...args: unknown[]) => unknown) =>
      function (this: unknown, ...args: unknown[]) {
        if (inStoreCall) return run.apply(this, args)
        const t = now()
        inStoreCall = true // a transaction inside it (a savepoint) is part of it
        try {
          return run.apply(this, args)
        } finally {
          inStoreCall = false
          addStoreTime('gathered writes', now() - t)
        }
      }
    const timedTx = wrap(tx) as typeof tx
    for (const mode of ['deferred', 'immediate', 'exclusive'] as const) timedTx[mode] = wrap(tx[mode]) as (typeof tx)[typeof mode]
    timedTx.default = timedTx
    return timedTx
  } as typeof make
}
timeGatheredWrites()

/**
 * CPU time (ms) the process's threads other than the main one have used: V8's
 * (garbage collection, the optimising compiler) and libuv's pool (file
 * system, DNS). From /proc, so Linux only: undefined elsewhere.
 */
function offMainThreadMs(): number | undefined {
  try {
    let ticks = 0
    for (const tid of readdirSync('/proc/self/task')) {
      if (tid === String(process.pid)) continue
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
      // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(fields[11]) + Number(fields[12])
    }
    return ticks * 10 // USER_HZ is 100 on Linux
  } catch {
    return undefined
  }
}

function make(): BenchServer {
  if (kind === 'ws') {
    if (process.env.BENCH_WS_COMMIT !== '1') return new PlainWsServer()
    dir ??= mkdtempSync(join(tmpdir(), 'belfry-bench-'))
    return new PlainWsServer({ commit: join(dir, 'plain-ws.db') })
  }
  if (kind === 'socketio') return new SocketIoServer()
  dir ??= mkdtempSync(join(tmpdir(), 'belfry-bench-'))
  const logger = pino(
    { level: 'warn' },
    {
      write: (line: string) => {
        if (warnings.length < 20) warnings.push(line.trim())
      },
    },
  )
  const store = timed(new SqliteStore(join(dir, 'belfry.db')))
  const s = new NotificationServer({ secret: SECRET, apiKey: API_KEY, store, logger })
  return {
    listen: async (p) => (await s.listen(p, '127.0.0.1')).port,
    broadcast: (n) => s.broadcast(n),
    sendToUser: (id, n) => s.sendToUser(id, n),
    close: () => s.close(),
  }
}

function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  gc?.()
}

/** Allocates and drops about 400 MB of small objects. */
function churn(): void {
  let keep: { i: number; s: string }[] = []
  for (let i = 0; i < 8_000_000; i++) {
    keep.push({ i, s: `x${i}` })
    if (keep.length === 1000) keep = []
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

serve({
  async start(args: { kind: Kind }) {
    kind = args.kind
    server = make()
    port = await server.listen(0)
    return { port, pid: process.pid }
  },

  /**
   * RSS after two full collections. First the child churns through short-lived
   * objects, so that V8's young generation has grown to its full size in every
   * reading: how far it had grown under the load before is then no part of
   * the difference between two readings.
   */
  async rss() {
    churn()
    await sleep(100)
    collect()
    await sleep(100)
    collect()
    const m = process.memoryUsage()
    return {
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      gcExposed: typeof (globalThis as { gc?: unknown }).gc === 'function',
    }
  },

  async broadcast(args: { k: string }) {
    storeTime = {}
    const t0 = now()
    const result = await server!.broadcast(payload(args.k, t0))
    return { t0, t1: now(), commitMs: storeTime.publish?.ms ?? 0, result }
  },

  /** Store time per method since the last call (or broadcast), and the CPU time used so far (and of it, off the main thread). */
  stats() {
    const out = { store: storeTime, cpu: process.cpuUsage(), offMainMs: offMainThreadMs() }
    storeTime = {}
    return out
  },

  async sendToUser(args: { userId: string; k: string }) {
    const t0 = now()
    await server!.sendToUser(args.userId, payload(args.k, t0))
    return { t0 }
  },

  /**
   * Notifications to single users at a steady rate: every 5 ms, publishes the
   * ones that are due. `k` is `t<i>`; each payload carries its own publish time.
   */
  async stream(args: { users: string[]; rate: number; durationMs: number }) {
    const total = Math.round((args.rate * args.durationMs) / 1000)
    const loop = monitorEventLoopDelay({ resolution: 1 })
    loop.enable()
    const calls: number[] = []
    const start = now()
    let sent = 0
    let maxLagMs = 0
    while (sent < total) {
      const due = Math.min(total, Math.floor(((now() - start) * args.rate) / 1000) + 1)
      if (due - sent > 1) maxLagMs = Math.max(maxLagMs, ((due - sent - 1) * 1000) / args.rate)
      for (; sent < due; sent++) {
        const user = args.users[sent % args.users.length]!
        const t = now()
        await server!.sendToUser(user, payload(`t${sent}`, t))
        calls.push(now() - t)
      }
      await sleep(5)
    }
    loop.disable()
    calls.sort((a, b) => a - b)
    const q = (p: number) => calls[Math.min(calls.length - 1, Math.floor(p * calls.length))] ?? 0
    return {
      sent,
      ms: now() - start,
      maxLagMs,
      call: { p50: q(0.5), p99: q(0.99), max: q(1) },
      loopDelay: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
    }
  },

  /**
   * The least a durable publish can cost this process: `rate` commits a
   * second for `durationMs`, paced as {@link stream} paces its publishes, in a
   * SQLite file opened as belfry's store opens its own, nothing sent. Each
   * commit is one row: appended to a table with no index (`append`), or put
   * in a table ordered by user and seq, as a user's replay needs to find it
   * (`keyed`; each user's seq counted in memory). The same pacing with
   * nothing in it runs first; its CPU is subtracted.
   */
  async floor(args: { rate: number; durationMs: number }) {
    dir ??= mkdtempSync(join(tmpdir(), 'belfry-bench-'))
    const db = new Database(join(dir, 'floor.db'))
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    db.pragma('wal_autocheckpoint = 0')
    db.exec(`CREATE TABLE IF NOT EXISTS log (no INTEGER PRIMARY KEY, user_no INTEGER NOT NULL, notification TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS inbox (user_no INTEGER NOT NULL, seq INTEGER NOT NULL, notification TEXT NOT NULL,
                                               PRIMARY KEY (user_no, seq)) WITHOUT ROWID`)
    const append = db.prepare('INSERT INTO log (user_no, notification) VALUES (?, ?)')
    const keyed = db.prepare('INSERT INTO inbox (user_no, seq, notification) VALUES (?, ?, ?)')
    const seqs = new Map<number, number>()
    const commits = Math.round((args.rate * args.durationMs) / 1000)
    const paced = async (work: (i: number) => void): Promise<number> => {
      const cpu0 = process.cpuUsage()
      const start = now()
      for (let done = 0; done < commits; ) {
        const due = Math.min(commits, Math.floor(((now() - start) * args.rate) / 1000) + 1)
        for (; done < due; done++) work(done)
        await sleep(5)
      }
      const cpu = process.cpuUsage(cpu0)
      return (cpu.user + cpu.system) / 1000
    }
    const body = (i: number) => JSON.stringify(payload(`f${i}`, now()))
    const appendTx = db.transaction((i: number) => append.run(i % 2000, body(i)))
    const keyedTx = db.transaction((i: number) => {
      const user = (i * 7919) % 2000
      const seq = (seqs.get(user) ?? 0) + 1
      seqs.set(user, seq)
      keyed.run(user, seq, body(i))
    })
    // A user's first entries fill the keyed table's pages in user order, as a store's users' do.
    for (let user = 0; user < 2000; user++) keyedTx.immediate(user)
    const idleMs = await paced(() => {})
    const appendMs = await paced((i) => appendTx.immediate(i))
    const keyedMs = await paced((i) => keyedTx.immediate(i))
    db.close()
    const per = (ms: number) => Math.max(0, ms - idleMs) / commits
    return { commits, appendMs: per(appendMs), keyedMs: per(keyedMs) }
  },

  /** A backlog for one user: `count` notifications, one publish each. */
  async backlog(args: { userId: string; count: number }) {
    const t0 = now()
    for (let i = 0; i < args.count; i++) await server!.sendToUser(args.userId, payload(`q${i}`, now()))
    return { ms: now() - t0 }
  },

  /**
   * Closes the server (every socket gets 1001), starts a new one on the same
   * port and database, and publishes one broadcast per key in `after` as soon
   * as it listens, while the clients are still away.
   */
  async restart(args: { after: string[] }) {
    const t0 = now()
    await server!.close()
    const tClosed = now()
    server = make()
    for (let attempt = 0; ; attempt++) {
      try {
        await server.listen(port)
        break
      } catch (error) {
        if (attempt > 50) throw error
        await sleep(20) // the old listener may take a moment to let go of the port
      }
    }
    const tListening = now()
    for (const k of args.after) await server.broadcast(payload(k, now()))
    return { t0, tClosed, tListening, tPublished: now() }
  },

  warnings: () => warnings,

  async stop() {
    await server?.close()
    server = undefined
    if (dir) rmSync(dir, { recursive: true, force: true })
    setTimeout(() => process.exit(0), 20)
    return { ok: true }
  },
})
