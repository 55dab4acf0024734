/**
 * The cluster phase of `npm run bench` (after the comparison with plain ws and
 * socket.io): belfry as several processes on PostgreSQL + Redis, against one
 * process on SQLite. PostgreSQL and Redis are private instances started here
 * (test/helpers/services.ts: temporary directories, free ports) and removed at
 * the end.
 *
 * 1. Latency: targeted publishes over HTTP at a steady rate, one user each;
 *    publish → receipt on one SQLite process, and on a cluster where each
 *    publish goes to a process other than the one holding the recipient's
 *    socket. Rounds interleaved (SQLite, cluster, SQLite, cluster).
 * 2. Fan-out: a broadcast to 10,000 users of the store, some connected through
 *    the cluster: until the fan-out job is done (every inbox entry durable), and
 *    until every connected recipient has it.
 * 3. Throughput: deliveries per second at the clients, with 1 and with 2
 *    processes, under a closed loop of targeted publishes, then of broadcasts.
 *
 * Environment: BENCH_CLUSTER (0 skips the phase), BENCH_CLUSTER_PROCS (2),
 * BENCH_CLUSTER_N (clients of the latency runs, 500), BENCH_CLUSTER_ROUNDS (3: the target compares medians, and with two a median is a mean),
 * BENCH_CLUSTER_RATE (200), BENCH_CLUSTER_STREAM_MS (6000),
 * BENCH_FANOUT_USERS (10000), BENCH_FANOUT_CONNECTED (1000),
 * BENCH_FANOUT_BROADCASTS (3), BENCH_FLOOD_N (clients of the throughput runs,
 * 1000), BENCH_FLOOD_MS (4000).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { Redis } from 'ioredis'
import pg from 'pg'
import { type PgInstance, type RedisInstance, startPostgres, startRedis, stopAllServices } from '../test/helpers/services.js'
import type { NodeConfig } from './cluster-node.js'
import type { Published, Target } from './publisher.js'
import { fmt, median, quantile, table } from './report.js'
import { now, type Peer } from './rpc.js'
import { userId } from './shared.js'

const env = (name: string, fallback: number): number => {
  const v = Number(process.env[name])
  return Number.isFinite(v) && v > 0 ? v : fallback
}

export const CLUSTER_ENV = [
  'BENCH_CLUSTER',
  'BENCH_CLUSTER_PROCS',
  'BENCH_CLUSTER_N',
  'BENCH_CLUSTER_ROUNDS',
  'BENCH_CLUSTER_RATE',
  'BENCH_CLUSTER_STREAM_MS',
  'BENCH_FANOUT_USERS',
  'BENCH_FANOUT_CONNECTED',
  'BENCH_FANOUT_BROADCASTS',
  'BENCH_FLOOD_N',
  'BENCH_FLOOD_MS',
]

/** Whether `npm run bench` runs this phase (BENCH_CLUSTER=0 leaves it out). */
export const CLUSTER_ON = process.env.BENCH_CLUSTER !== '0'

const config = {
  procs: env('BENCH_CLUSTER_PROCS', 2),
  clients: env('BENCH_CLUSTER_N', 500),
  rounds: env('BENCH_CLUSTER_ROUNDS', 3),
  rate: env('BENCH_CLUSTER_RATE', 200),
  streamMs: env('BENCH_CLUSTER_STREAM_MS', 6000),
  warmMs: 1000,
  fanoutUsers: env('BENCH_FANOUT_USERS', 10_000),
  fanoutConnected: env('BENCH_FANOUT_CONNECTED', 1000),
  fanoutBroadcasts: env('BENCH_FANOUT_BROADCASTS', 3),
  floodClients: env('BENCH_FLOOD_N', 1000),
  floodMs: env('BENCH_FLOOD_MS', 4000),
  /** Publishes in flight in the throughput runs (the same for 1 and 2 processes). */
  floodTargeted: 32,
  floodBroadcast: 4,
}
export type ClusterConfig = typeof config

/** The targets. */
export const LATENCY_RATIO_TARGET = 2
export const FANOUT_DURABLE_TARGET_MS = 2000
export const FANOUT_CONNECTED_TARGET_MS = 3000

type Q = { p50: number; p99: number; max: number }

export interface LatencyRun {
  setup: 'sqlite' | 'cluster'
  round: number
  sent: number
  failed: number
  received: number
  duplicates: number
  /** Publish (the publisher's call) → receipt at the client (ms). */
  receipt: Q
  /** The HTTP publish call, request → 201 (ms). */
  call: Q
  maxLagMs: number
  /** Cores busy on the machine during the stream (every process, the bench's and any other work). */
  machineCores: number
  /** Cores PostgreSQL used during the stream (NaN for the SQLite runs). */
  postgresCores: number
}

export interface FanoutRun {
  k: string
  /** Request → 201 (the notification, the first batch and the job durable). */
  publishMs: number
  /** Request → no fan-out job left (every inbox entry committed). */
  durableMs: number
  inboxRows: number
  /** Request → the last connected recipient's receipt. */
  connectedMs: number
  /** Request → the first connected recipient's receipt. */
  firstMs: number
  lost: number
  recipients: number
  /** Cores busy on the machine from the publish until every connected recipient had it (every process). */
  machineCores: number
}

export interface ThroughputRun {
  procs: number
  stream: 'targeted' | 'broadcast'
  publish: Published
  expected: number
  delivered: number
  /** From the first publish to the last receipt (ms). */
  ms: number
  /** Receipt latency of the targeted stream, under that load. */
  receipt?: Q
  /** CPU time of the server processes over the same span, in cores (1 = one core busy). */
  serverCores: number
  /** Cores busy on the machine over the same span (every process). */
  machineCores: number
  /** Cores PostgreSQL used over the same span. */
  postgresCores: number
}

export interface ClusterResults {
  config: ClusterConfig
  versions: { postgres: string; redis: string }
  startMs: number
  elapsedMs: number
  /** The machine's load average (1 min) when the phase started and when it ended. */
  load: [number, number]
  /** A PostgreSQL round trip (`SELECT 1`, 200 in a row from the bench's own process), at the start and at the end of the phase (ms). */
  roundTrip: [Q, Q]
  latency: LatencyRun[]
  fanout: FanoutRun[]
  throughput: ThroughputRun[]
  warnings: string[]
}

export interface ClusterContext {
  spawn(file: string, execArgv: string[], name: string): Peer
  loadgens: Peer[]
  log(line: string): void
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0)
const range = (n: number) => Array.from({ length: n }, (_, i) => i)
/** Busy and total CPU time of the whole machine so far, from /proc/stat (Linux; zeros elsewhere). */
function machineCpu(): { busy: number; total: number } {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number)
    const total = sum(fields)
    return { busy: total - fields[3]! - fields[4]!, total }
  } catch {
    return { busy: 0, total: 0 }
  }
}
/**
 * CPU time (ms) of a PostgreSQL server: its postmaster (with the children it has reaped) and the
 * processes it runs now (backends, checkpointer…), from /proc (Linux, 100 ticks a second); NaN elsewhere.
 */
function postgresCpu(postmaster: number): number {
  let ticks = 0
  try {
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue
      let stat: string
      try {
        stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      } catch {
        continue // gone meanwhile
      }
      // After "pid (comm) ": state, ppid, …; utime, stime, cutime, cstime are the 11th to 14th after ppid.
      const f = stat
        .slice(stat.lastIndexOf(')') + 2)
        .split(' ')
        .map(Number)
      if (Number(name) === postmaster) ticks += f[11]! + f[12]! + f[13]! + f[14]!
      else if (f[1] === postmaster) ticks += f[11]! + f[12]!
    }
  } catch {
    return Number.NaN
  }
  return ticks * 10
}

/** Cores busy (of all the machine's) between two readings, whichever processes used them. */
const busyCores = (a: { busy: number; total: number }, b: { busy: number; total: number }) =>
  b.total > a.total ? ((b.busy - a.busy) / (b.total - a.total)) * cpus().length : Number.NaN

const quantiles = (xs: readonly number[]): Q => ({ p50: quantile(xs, 0.5), p99: quantile(xs, 0.99), max: quantile(xs, 1) })

interface Node {
  peer: Peer
  /** http://127.0.0.1:port */
  http: string
  ws: string
}

export async function runCluster(ctx: ClusterContext): Promise<ClusterResults> {
  const t0 = now()
  const load0 = loadavg()[0]!
  const { loadgens, log } = ctx
  const all = <T>(method: string, args: (li: number) => unknown, timeoutMs?: number) =>
    Promise.all(loadgens.map((l, li) => l.call<T>(method, args(li), timeoutMs)))
  const warnings: string[] = []

  log('  cluster: starting PostgreSQL and Redis')
  let services: [PgInstance, RedisInstance]
  try {
    services = await Promise.all([startPostgres({ settings: { max_connections: 200 } }), startRedis()])
  } catch (error) {
    await stopAllServices().catch(() => {})
    throw error
  }
  const [postgres, redis] = services
  const db = new pg.Client({ connectionString: postgres.url })
  await db.connect()
  const publisher = ctx.spawn('publisher.ts', [], 'publisher')
  const step = (what: string) => log(`  cluster [${fmt((now() - t0) / 1000, 0)} s]: ${what}`)

  try {
    const versions = {
      postgres: String((await db.query('SHOW server_version')).rows[0].server_version),
      redis: await redisVersion(redis.url),
    }
    // The postmaster: the parent of this connection's backend.
    const backend = Number((await db.query('SELECT pg_backend_pid() AS pid')).rows[0].pid)
    let postmaster = Number.NaN
    try {
      const stat = readFileSync(`/proc/${backend}/stat`, 'utf8')
      postmaster = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    } catch {}
    const pgCpu = () => postgresCpu(postmaster)
    const startMs = now() - t0
    const roundTrip0 = await roundTrip(db)

    async function start(configs: NodeConfig[]): Promise<Node[]> {
      // BENCH_CPU_PROF=<dir>: a CPU profile of each server process, as for the other phases.
      const prof = (i: number) =>
        process.env.BENCH_CPU_PROF
          ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}/cluster-${configs[i]!.store}-node${i}`]
          : []
      const peers = configs.map((_, i) => ctx.spawn('cluster-node.ts', prof(i), `cluster node ${i}`))
      const ports = await Promise.all(peers.map((p, i) => p.call<{ port: number }>('start', configs[i])))
      return peers.map((peer, i) => ({ peer, http: `http://127.0.0.1:${ports[i]!.port}`, ws: `ws://127.0.0.1:${ports[i]!.port}/ws` }))
    }
    const pgNodes = (n: number, name: string) =>
      start(range(n).map(() => ({ store: 'postgres', pgUrl: postgres.url, schema: name, redisUrl: redis.url, channel: `bench:${name}` })))

    /** Connects one raw belfry client per user, to the node `home(i)` says; the load generators share them out. */
    async function connect(nodes: Node[], users: string[], home: (i: number) => number): Promise<number> {
      const c0 = now()
      const outcome = await Promise.all(
        loadgens.map(async (l, li) => {
          let failed = 0
          const errors: string[] = []
          for (let n = 0; n < nodes.length; n++) {
            const mine = users.filter((_, i) => i % loadgens.length === li && home(i) === n)
            if (mine.length === 0) continue
            const r = await l.call<{ failed: number; errors: string[] }>(
              'connect',
              { kind: 'belfry', url: nodes[n]!.ws, users: mine, window: 64 },
              120_000,
            )
            failed += r.failed
            errors.push(...r.errors)
          }
          return { failed, errors }
        }),
      )
      const failed = sum(outcome.map((o) => o.failed))
      if (failed > 0) throw new Error(`cluster: ${failed} clients failed to connect: ${outcome.flatMap((o) => o.errors).join('; ')}`)
      return now() - c0
    }

    async function stop(nodes: Node[]): Promise<void> {
      await all('closeAll', () => ({}))
      for (const n of nodes) warnings.push(...(await n.peer.call<string[]>('warnings')).map((w) => `${n.http}: ${w}`))
      await Promise.all(
        nodes.map(async (n) => {
          await n.peer.call('stop', {}, 30_000)
          await new Promise((r) => (n.peer.child.exitCode === null ? n.peer.child.once('exit', r) : r(null)))
        }),
      )
    }

    const tally = async () => {
      const t = await all<{ deliveries: number; lastAt: number; duplicates: number }>('tally', () => ({}))
      return {
        deliveries: sum(t.map((x) => x.deliveries)),
        lastAt: Math.max(...t.map((x) => x.lastAt)),
        duplicates: sum(t.map((x) => x.duplicates)),
      }
    }
    const waitDeliveries = async (want: number, timeoutMs: number) => {
      const end = now() + timeoutMs
      let t = await tally()
      while (t.deliveries < want && now() < end) {
        await sleep(20)
        t = await tally()
      }
      return t
    }
    const cpu = async (nodes: Node[]) =>
      sum(
        await Promise.all(
          nodes.map(async (n) => {
            const s = await n.peer.call<{ cpu: { user: number; system: number } }>('stats')
            return (s.cpu.user + s.cpu.system) / 1000
          }),
        ),
      )

    // ---- 1. latency: one SQLite process vs a cluster, cross-process ------------------
    const latency: LatencyRun[] = []
    const users = range(config.clients).map(userId)
    for (let round = 1; round <= config.rounds; round++) {
      for (const setup of ['sqlite', 'cluster'] as const) {
        const nodes = setup === 'sqlite' ? await start([{ store: 'sqlite' }]) : await pgNodes(config.procs, `latency_${round}`)
        const S = nodes.length
        const connectMs = await connect(nodes, users, (i) => i % S)
        // The publish goes to the next process: never the one holding the recipient's socket (unless there is one).
        const targets: Target[] = users.map((u, i) => ({ url: nodes[(i + 1) % S]!.http, userId: u }))
        await publisher.call('stream', { targets, rate: config.rate, durationMs: config.warmMs, prefix: 'w' }, 60_000)
        await sleep(500)
        await all('stream', () => ({ drain: true }))
        const before = await tally()
        const m0 = machineCpu()
        const pg0 = pgCpu()
        const pub = await publisher.call<Published>(
          'stream',
          { targets, rate: config.rate, durationMs: config.streamMs, prefix: 't' },
          config.streamMs + 60_000,
        )
        await waitDeliveries(before.deliveries + pub.ok, 10_000)
        const drained = await all<{ targeted: number; duplicates: number; latencies: number[] }>('stream', () => ({ drain: true }))
        const lat = drained.flatMap((d) => d.latencies)
        const run: LatencyRun = {
          setup,
          round,
          sent: pub.sent,
          failed: pub.failed,
          received: lat.length,
          duplicates: sum(drained.map((d) => d.duplicates)),
          receipt: quantiles(lat),
          call: pub.call,
          maxLagMs: pub.maxLagMs,
          machineCores: busyCores(m0, machineCpu()),
          postgresCores: setup === 'sqlite' ? Number.NaN : (pgCpu() - pg0) / (now() - pub.t0),
        }
        latency.push(run)
        step(
          `latency round ${round}, ${setup === 'sqlite' ? '1 process on SQLite' : `${S} processes on PostgreSQL + Redis`} (${config.clients} connected in ${fmt(connectMs, 0)} ms): ` +
            `${run.received}/${run.sent} received, p50 ${fmt(run.receipt.p50)} p99 ${fmt(run.receipt.p99)} max ${fmt(run.receipt.max)} ms; ` +
            `publish call p50 ${fmt(run.call.p50)} p99 ${fmt(run.call.p99)} ms; PostgreSQL ${fmt(run.postgresCores, 2)} cores, machine ${fmt(run.machineCores, 2)} busy${pub.failed ? `; ${pub.failed} failed: ${pub.errors.join('; ')}` : ''}`,
        )
        await stop(nodes)
      }
    }

    // ---- 2. a broadcast to 10,000 users of the store, some connected ---------------------
    const fanout: FanoutRun[] = []
    {
      const schema = 'fanout'
      const nodes = await pgNodes(config.procs, schema)
      const S = nodes.length
      const everyNth = Math.max(1, Math.floor(config.fanoutUsers / config.fanoutConnected))
      // All users first, in id order: the connected ones (every nth) are spread over every batch of the job.
      await db.query(`INSERT INTO ${schema}.users (id) SELECT 'u' || g FROM generate_series(0, $1::int - 1) AS g ON CONFLICT DO NOTHING`, [
        config.fanoutUsers,
      ])
      const connected = range(config.fanoutUsers)
        .filter((i) => i % everyNth === 0)
        .slice(0, config.fanoutConnected)
        .map(userId)
      const connectMs = await connect(nodes, connected, (i) => i % S)
      const storeUsers = Number((await db.query(`SELECT count(*) AS n FROM ${schema}.users`)).rows[0].n)
      step(`fan-out: ${storeUsers} users in the store, ${connected.length} connected in ${fmt(connectMs, 0)} ms`)
      for (let b = 0; b < config.fanoutBroadcasts; b++) {
        const k = `F${b}`
        const m0 = machineCpu()
        const pub = await publisher.call<{ t0: number; t1: number; id: string; recipients: number }>('once', {
          target: { url: nodes[b % S]!.http },
          k,
        })
        // The job is durable when the 201 comes: poll until the last batch has deleted it.
        let durableAt = Number.NaN
        const end = now() + 30_000
        while (now() < end) {
          const { rows } = await db.query(`SELECT count(*)::int AS n FROM ${schema}.fanout_jobs`)
          if (rows[0].n === 0) {
            durableAt = now()
            break
          }
          await sleep(5)
        }
        const inboxRows = Number(
          (
            await db.query(
              `SELECT count(*)::int AS n FROM ${schema}.inbox i JOIN ${schema}.notifications n ON n.no = i.notification_no WHERE n.id = $1`,
              [pub.id],
            )
          ).rows[0].n,
        )
        const got = await all<Record<string, { count: number; first: number; last: number }>>('waitKeys', () => ({
          keys: [k],
          timeoutMs: 30_000,
        }))
        const machineCores = busyCores(m0, machineCpu())
        const count = sum(got.map((g) => g[k]!.count))
        const run: FanoutRun = {
          k,
          publishMs: pub.t1 - pub.t0,
          durableMs: durableAt - pub.t0,
          inboxRows,
          connectedMs: Math.max(...got.map((g) => g[k]!.last)) - pub.t0,
          firstMs: Math.min(...got.filter((g) => g[k]!.count > 0).map((g) => g[k]!.first)) - pub.t0,
          lost: connected.length - count,
          recipients: pub.recipients,
          machineCores,
        }
        fanout.push(run)
        step(
          `fan-out ${b + 1}: 201 after ${fmt(run.publishMs)} ms, job done (${run.inboxRows} inbox rows) after ${fmt(run.durableMs, 0)} ms, ` +
            `all ${connected.length} connected after ${fmt(run.connectedMs, 0)} ms (${run.lost} lost)`,
        )
        await sleep(1300) // each broadcast is done before the next
      }
      await stop(nodes)
    }

    // ---- 3. deliveries per second, 1 and 2 processes ------------------------------------
    const throughput: ThroughputRun[] = []
    const floodUsers = range(config.floodClients).map(userId)
    for (const procs of [1, config.procs]) {
      const nodes = await pgNodes(procs, `throughput_${procs}`)
      await connect(nodes, floodUsers, (i) => i % procs)
      for (const stream of ['targeted', 'broadcast'] as const) {
        const targets: Target[] =
          stream === 'targeted'
            ? floodUsers.map((u, i) => ({ url: nodes[(i + 1) % procs]!.http, userId: u }))
            : nodes.map((n) => ({ url: n.http }))
        const before = await tally()
        const cpu0 = await cpu(nodes)
        const m0 = machineCpu()
        const pg0 = pgCpu()
        const publish = await publisher.call<Published>(
          'flood',
          {
            targets,
            concurrency: stream === 'targeted' ? config.floodTargeted : config.floodBroadcast,
            durationMs: config.floodMs,
            prefix: stream === 'targeted' ? 't' : 'B',
          },
          config.floodMs + 60_000,
        )
        const expected = stream === 'targeted' ? publish.ok : publish.recipients
        const after = await waitDeliveries(before.deliveries + expected, 30_000)
        const ms = after.lastAt - publish.t0
        const serverCores = (await cpu(nodes)) - cpu0
        const machineCores = busyCores(m0, machineCpu())
        const postgresCores = (pgCpu() - pg0) / ms
        const drained = await all<{ latencies: number[] }>('stream', () => ({ drain: true }))
        const run: ThroughputRun = {
          procs,
          stream,
          publish,
          expected,
          delivered: after.deliveries - before.deliveries,
          ms,
          ...(stream === 'targeted' ? { receipt: quantiles(drained.flatMap((d) => d.latencies)) } : {}),
          serverCores: serverCores / ms,
          machineCores,
          postgresCores,
        }
        throughput.push(run)
        step(
          `throughput, ${procs} process${procs > 1 ? 'es' : ''}, ${stream}: ${run.publish.ok} publishes (${fmt(run.publish.ok / (config.floodMs / 1000), 0)}/s), ` +
            `${run.delivered}/${run.expected} delivered in ${fmt(ms, 0)} ms = ${fmt(run.delivered / (ms / 1000), 0)}/s; servers ${fmt(run.serverCores, 2)} cores, PostgreSQL ${fmt(run.postgresCores, 2)}, machine ${fmt(run.machineCores, 2)} busy` +
            `${publish.failed ? `; ${publish.failed} failed: ${publish.errors.join('; ')}` : ''}`,
        )
        await sleep(500)
      }
      await stop(nodes)
    }

    const roundTrip1 = await roundTrip(db)
    return {
      config,
      versions,
      startMs,
      elapsedMs: now() - t0,
      load: [load0, loadavg()[0]!],
      roundTrip: [roundTrip0, roundTrip1],
      latency,
      fanout,
      throughput,
      warnings,
    }
  } finally {
    publisher.child.disconnect()
    await db.end().catch(() => {})
    await stopAllServices()
  }
}

/** `SELECT 1`, `n` in a row: how long a round trip to PostgreSQL takes on this machine now. */
async function roundTrip(db: pg.Client, n = 200): Promise<Q> {
  const times: number[] = []
  for (let i = 0; i < n; i++) {
    const t = now()
    await db.query('SELECT 1')
    times.push(now() - t)
  }
  return quantiles(times)
}

async function redisVersion(url: string): Promise<string> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await client.connect()
    return /redis_version:(\S+)/.exec(await client.info('server'))?.[1] ?? 'unknown'
  } finally {
    client.disconnect()
  }
}

// ---- the report ---------------------------------------------------------------------

const met = (ok: boolean) => (ok ? '**met**' : '**missed**')

export interface ClusterSummary {
  single: { p50: number; p99: number }
  cluster: { p50: number; p99: number }
  latRatio: number
  durableWorst: number
  connectedWorst: number
}

/** The cluster's section of RESULTS.md, its rows of the Targets table, and why a target is missed. */
export function clusterReport(r: ClusterResults): { section: string; targets: string[][]; whyMissed: string[]; summary: ClusterSummary } {
  const c = r.config
  const cores = cpus().length
  const of = (setup: LatencyRun['setup']) => r.latency.filter((l) => l.setup === setup)
  const med = (setup: LatencyRun['setup'], pick: (l: LatencyRun) => number) => median(of(setup).map(pick))
  const lat = (setup: LatencyRun['setup']) => ({
    p50: med(setup, (l) => l.receipt.p50),
    p99: med(setup, (l) => l.receipt.p99),
    max: med(setup, (l) => l.receipt.max),
    callP50: med(setup, (l) => l.call.p50),
    callP99: med(setup, (l) => l.call.p99),
    callMax: med(setup, (l) => l.call.max),
    machine: med(setup, (l) => l.machineCores),
    postgres: med(setup, (l) => l.postgresCores),
  })
  const single = lat('sqlite')
  const cluster = lat('cluster')
  const latRatio = cluster.p99 / single.p99
  const latLost = sum(r.latency.map((l) => l.sent - l.received))
  const durableWorst = Math.max(...r.fanout.map((f) => f.durableMs))
  const connectedWorst = Math.max(...r.fanout.map((f) => f.connectedMs))
  const fanoutLost = sum(r.fanout.map((f) => f.lost))
  const fanoutRowsOk = r.fanout.every((f) => f.inboxRows === c.fanoutUsers)
  const rate = (t: ThroughputRun) => t.delivered / (t.ms / 1000)
  const label = (setup: LatencyRun['setup']) => (setup === 'sqlite' ? '1 process, SQLite' : `${c.procs} processes, PostgreSQL + Redis`)

  const latencyTable = table(
    [
      'setup',
      'round',
      'received / sent',
      'receipt p50 (ms)',
      'receipt p99 (ms)',
      'receipt max (ms)',
      'publish call p50 (ms)',
      'call p99 (ms)',
      'call max (ms)',
      'PostgreSQL CPU (cores)',
      'machine CPU busy (cores)',
    ],
    [
      ...r.latency.map((l) => [
        label(l.setup),
        String(l.round),
        `${l.received} / ${l.sent}${l.failed ? ` (${l.failed} failed)` : ''}`,
        fmt(l.receipt.p50, 2),
        fmt(l.receipt.p99, 2),
        fmt(l.receipt.max, 1),
        fmt(l.call.p50, 2),
        fmt(l.call.p99, 2),
        fmt(l.call.max, 1),
        fmt(l.postgresCores, 2),
        fmt(l.machineCores, 2),
      ]),
      ...(['sqlite', 'cluster'] as const).map((setup) => {
        const m = lat(setup)
        return [
          `**median: ${label(setup)}**`,
          '',
          '',
          fmt(m.p50, 2),
          `**${fmt(m.p99, 2)}**`,
          fmt(m.max, 1),
          fmt(m.callP50, 2),
          fmt(m.callP99, 2),
          fmt(m.callMax, 1),
          fmt(m.postgres, 2),
          fmt(m.machine, 2),
        ]
      }),
    ],
  )

  const fanoutTable = table(
    [
      'broadcast',
      'publish call → 201 (ms)',
      'fan-out job done (ms)',
      'inbox rows',
      'first connected receipt (ms)',
      `all ${fmt(c.fanoutConnected, 0)} connected have it (ms)`,
      'lost',
      'machine CPU busy (cores)',
    ],
    [
      ...r.fanout.map((f, i) => [
        String(i + 1),
        fmt(f.publishMs, 1),
        fmt(f.durableMs, 0),
        String(f.inboxRows),
        fmt(f.firstMs, 1),
        fmt(f.connectedMs, 0),
        String(f.lost),
        fmt(f.machineCores, 2),
      ]),
      [
        '**median**',
        fmt(median(r.fanout.map((f) => f.publishMs)), 1),
        fmt(median(r.fanout.map((f) => f.durableMs)), 0),
        '',
        fmt(median(r.fanout.map((f) => f.firstMs)), 1),
        fmt(median(r.fanout.map((f) => f.connectedMs)), 0),
        '',
        fmt(median(r.fanout.map((f) => f.machineCores)), 2),
      ],
    ],
  )

  const throughputTable = table(
    [
      'processes',
      'publishes',
      'in flight',
      'answered 201',
      'publishes/s',
      'publish call p50 / p99 (ms)',
      'delivered',
      'first publish → last receipt (ms)',
      'deliveries/s at the clients',
      'receipt p50 / p99 (ms)',
      'server processes CPU (cores)',
      'server CPU per delivery (ms)',
      'PostgreSQL CPU (cores)',
      'machine CPU busy (cores)',
    ],
    r.throughput.map((t) => [
      String(t.procs),
      t.stream === 'targeted' ? 'targeted, one user each' : `broadcasts to all ${fmt(c.floodClients, 0)}`,
      String(t.stream === 'targeted' ? c.floodTargeted : c.floodBroadcast),
      String(t.publish.ok) + (t.publish.failed ? ` (${t.publish.failed} failed)` : ''),
      fmt(t.publish.ok / (c.floodMs / 1000), 0),
      `${fmt(t.publish.call.p50, 1)} / ${fmt(t.publish.call.p99, 1)}`,
      `${t.delivered} of ${t.expected}`,
      fmt(t.ms, 0),
      `**${fmt(rate(t), 0)}**`,
      t.receipt ? `${fmt(t.receipt.p50, 1)} / ${fmt(t.receipt.p99, 1)}` : '—',
      fmt(t.serverCores, 2),
      fmt((t.serverCores * t.ms) / t.delivered, 3),
      fmt(t.postgresCores, 2),
      fmt(t.machineCores, 2),
    ]),
  )

  const targets: string[][] = [
    [
      `cluster (${c.procs} processes, PostgreSQL + Redis): publish → receipt p99 at ${c.rate}/s, published to another process than the recipient's, ≤ ${LATENCY_RATIO_TARGET}× one process on SQLite`,
      `${fmt(cluster.p99, 2)} ms vs ${fmt(single.p99, 2)} ms = ${fmt(latRatio, 2)}× (p50 ${fmt(cluster.p50, 2)} vs ${fmt(single.p50, 2)} ms); ${latLost} lost`,
      met(latRatio <= LATENCY_RATIO_TARGET && latLost === 0),
    ],
    [
      `broadcast to ${fmt(c.fanoutUsers, 0)} users on PostgreSQL: publish → fan-out job done (every inbox entry durable) ≤ ${FANOUT_DURABLE_TARGET_MS / 1000} s`,
      `worst of ${r.fanout.length}: ${fmt(durableWorst / 1000, 2)} s (median ${fmt(median(r.fanout.map((f) => f.durableMs)) / 1000, 2)} s); ${fanoutRowsOk ? `${fmt(c.fanoutUsers, 0)} inbox rows each` : 'inbox rows missing'}`,
      met(durableWorst <= FANOUT_DURABLE_TARGET_MS && fanoutRowsOk),
    ],
    [
      `the same broadcast: all ${fmt(c.fanoutConnected, 0)} connected recipients (over ${c.procs} processes) have it ≤ ${FANOUT_CONNECTED_TARGET_MS / 1000} s`,
      `worst of ${r.fanout.length}: ${fmt(connectedWorst / 1000, 2)} s (median ${fmt(median(r.fanout.map((f) => f.connectedMs)) / 1000, 2)} s); ${fanoutLost} lost`,
      met(connectedWorst <= FANOUT_CONNECTED_TARGET_MS && fanoutLost === 0),
    ],
  ]

  const whyMissed: string[] = []
  if (!(latRatio <= LATENCY_RATIO_TARGET && latLost === 0)) {
    const targeted = (procs: number) => r.throughput.find((x) => x.procs === procs && x.stream === 'targeted')
    const capacity = (procs: number) => {
      const t = targeted(procs)
      return t ? t.publish.ok / (c.floodMs / 1000) : Number.NaN
    }
    const cap = capacity(c.procs)
    const t2 = targeted(c.procs)
    whyMissed.push(
      `- Cluster latency: the publish call (request → 201; nothing is sent before the commit) takes p50 ${fmt(cluster.callP50, 2)} ms, ` +
        `p99 ${fmt(cluster.callP99, 2)} ms in the cluster against ${fmt(single.callP50, 2)} / ${fmt(single.callP99, 2)} ms on SQLite, ` +
        `for a receipt p99 of ${fmt(cluster.p99, 2)} ms` +
        (cluster.callP99 >= 0.7 * cluster.p99
          ? ': the time goes to the publish, not to the hop through Redis to the other process. '
          : '; the rest is the hop through Redis to the other process and its send. ') +
        'A targeted publish on PostgreSQL is one statement, one round trip to the PostgreSQL process (the notification, ' +
        "the users' seqs and the inbox entries; two more the first time a user is seen), where SQLite is a function call in the " +
        `server process; a round trip (\`SELECT 1\`) took p50 ${fmt(r.roundTrip[0].p50, 2)} ms at the start of the phase and ` +
        `${fmt(r.roundTrip[1].p50, 2)} ms at its end, and the closed loop below got ${fmt(cap, 0)} targeted publishes/s through ` +
        `${c.procs} processes (${fmt(capacity(1), 0)} through one)` +
        (t2
          ? `, the server processes using ${fmt((t2.serverCores * t2.ms) / t2.delivered, 1)} ms of CPU a publish (HTTP, the ` +
            'PostgreSQL client, Redis out of one process and into both, the send) and PostgreSQL ' +
            `${fmt(t2.postgresCores, 2)} cores. `
          : '. ') +
        (!Number.isFinite(cap)
          ? ''
          : cap < 1.25 * c.rate
            ? `So ${c.rate}/s is about all the cluster took on this machine as it was: publishes queued (the call's p50 is ` +
              `${fmt(cluster.callP50, 0)} ms) and the p99 is the queue's. `
            : `${c.rate}/s is below that, yet the call's p99 is ${fmt(cluster.callP99, 0)} ms: publishes wait for a core, in the ` +
              'server processes and in PostgreSQL. ') +
        `The machine has ${cores} cores for the servers, PostgreSQL, Redis, the publisher, the load generators and other ` +
        `work (${fmt(cluster.machine, 2)} cores busy during the cluster's streams, of them ${fmt(cluster.postgres, 2)} PostgreSQL's; ` +
        `${fmt(single.machine, 2)} during SQLite's; ` +
        `load average ${fmt(r.load[0], 1)} → ${fmt(r.load[1], 1)}).` +
        (latLost > 0 ? ` ${latLost} publishes were lost or failed (see the table).` : ''),
    )
  }
  if (!(durableWorst <= FANOUT_DURABLE_TARGET_MS && fanoutRowsOk)) {
    const batches = Math.ceil(c.fanoutUsers / 1000)
    const worst = r.fanout.find((f) => f.durableMs === durableWorst)
    const best = Math.min(...r.fanout.map((f) => f.durableMs))
    whyMissed.push(
      `- Fan-out job: ${batches} batches of 1,000 inbox entries (the first in the publish), one transaction each, one after ` +
        `another (a job is worked on by one process at a time, \`FOR UPDATE SKIP LOCKED\`): worst ${fmt(durableWorst, 0)} ms, ` +
        `about ${fmt(durableWorst / batches, 0)} ms a batch. The ${r.fanout.length} broadcasts do the same work and took ` +
        `${r.fanout.map((f) => fmt(f.durableMs, 0)).join(', ')} ms (best ${fmt(best, 0)} ms), so the spread is the machine's state: ` +
        `${fmt(worst?.machineCores ?? Number.NaN, 2)} of its ${cores} cores busy during the slowest (load average ` +
        `${fmt(r.load[0], 1)} → ${fmt(r.load[1], 1)}).` +
        (fanoutRowsOk ? '' : ' Some inbox rows were missing when the job was gone: see the table.'),
    )
  }
  if (!(connectedWorst <= FANOUT_CONNECTED_TARGET_MS && fanoutLost === 0)) {
    whyMissed.push(
      '- Fan-out to the connected: the last connected recipient is in the last batch of the job, so it waits for the whole job ' +
        `(${fmt(durableWorst, 0)} ms at worst) and then for its send: worst ${fmt(connectedWorst, 0)} ms, ${fanoutLost} lost.`,
    )
  }

  const section = `## Cluster: PostgreSQL + Redis (belfry)

belfry as ${c.procs} server processes sharing PostgreSQL ${r.versions.postgres} (the store) and Redis ${r.versions.redis}
(the broker), both private instances the bench starts on 127.0.0.1 and removes afterwards
(test/helpers/services.ts; PostgreSQL with \`fsync=off\`, as the SQLite store runs with \`synchronous=NORMAL\`
in WAL mode: neither waits for the disk at each commit). Publishes come over HTTP (\`POST /api/notifications\`,
keep-alive) from a publisher process of their own (bench/publisher.ts); the clients are the load
generators' raw belfry clients (acking as belfry's client does: through the pongs of the heartbeat). Every server process is started fresh, on a
fresh PostgreSQL schema. The phase took ${fmt(r.elapsedMs / 1000, 0)} s (of it ${fmt(r.startMs / 1000, 1)} s starting PostgreSQL and Redis); the
machine's load average (1 min) was ${fmt(r.load[0], 2)} when it started and ${fmt(r.load[1], 2)} when it ended. "Machine CPU busy"
is from /proc/stat: every process on the machine, the bench's and any other work. A PostgreSQL round trip
(\`SELECT 1\` from the bench's own process, 200 in a row) took p50 ${fmt(r.roundTrip[0].p50, 2)} ms, p99 ${fmt(r.roundTrip[0].p99, 2)} ms at the start
of the phase and p50 ${fmt(r.roundTrip[1].p50, 2)} ms, p99 ${fmt(r.roundTrip[1].p99, 2)} ms at its end.

### Latency across processes

Targeted publishes, one user each, ${c.rate}/s for ${c.streamMs / 1000} s (open loop: each is sent when due, whether
or not the earlier ones were answered; a ${c.warmMs / 1000} s warm-up before it is not counted), round robin over
${c.clients} connected users. On one process on SQLite, every publish goes to that process. On the cluster,
client *i* is connected to process *i* mod ${c.procs} and its publishes go to process *i* + 1 mod ${c.procs}, so every
notification goes publisher → process A → PostgreSQL → Redis → process B → client. Receipt latency: the
publisher stamps the payload with the time it sends the request, the client subtracts it from its time
of receipt (one clock, CLOCK_MONOTONIC). Publish call: request → 201. Rounds interleaved (SQLite,
cluster, SQLite, …), ${c.rounds} of each; the target compares the medians of the rounds' p99s.

${latencyTable}

### Broadcast to ${fmt(c.fanoutUsers, 0)} users on PostgreSQL

${fmt(c.fanoutUsers, 0)} users in the store (inserted in id order before anyone connects); every
${fmt(c.fanoutUsers / c.fanoutConnected, 0)}th of them (${fmt(c.fanoutConnected, 0)}) connected, split over the ${c.procs} processes, so that the
connected are spread over every batch of the fan-out. ${r.fanout.length} broadcasts over HTTP, to each process in
turn, 1.3 s apart; the default \`fanOutBatch\` (1,000). The publish answers 201 once the notification, the
first batch and the fan-out job are committed; the job is done when its row is gone from
\`fanout_jobs\` (polled every 5 ms), and then the notification's inbox rows are counted. Times from
the publish request.

${fanoutTable}

### Deliveries per second, 1 and ${c.procs} processes (no target)

${fmt(c.floodClients, 0)} connected clients, split over the processes; a fresh schema for each process count. A
closed loop of publishes over HTTP for ${c.floodMs / 1000} s (a slot publishes again as soon as it is answered):
first targeted publishes, one user each (with ${c.procs} processes, to the one not holding the recipient), then
broadcasts to all ${fmt(c.floodClients, 0)} users (to each process in turn; a broadcast larger than 1,000 continues
as a fan-out job). Deliveries/s: the notifications the clients received, over the time from the first
publish to the last receipt (everything published is waited for, so a backlog still draining counts
against the rate). This machine has ${cores} cores for everything (the servers, PostgreSQL, Redis, the
publisher, the load generators): a second process brings no core of its own here.

${throughputTable}
`
  return { section, targets, whyMissed, summary: { single, cluster, latRatio, durableWorst, connectedWorst } }
}
