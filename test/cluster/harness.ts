/**
 * The cluster tests' pieces: belfry-server processes (the CLI, bundled from
 * source by setup.ts) on one PostgreSQL database and one Redis, behind
 * scripts/balance.ts; fleets of NotificationClients through the balancer; a
 * stream of HTTP publishes to random processes, with a failure in the middle;
 * and the checks that every client got its user's inbox, once, in order.
 *
 * Isolation: the CLI always uses the schema `belfry` and the Redis channel
 * `belfry:events`, so each cluster gets a database of its own (CREATE
 * DATABASE), and the clusters of the files (one file at a time) run one after
 * the other on a Redis: each file stops its processes before the next starts.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { expect, inject } from 'vitest'
import WebSocket from 'ws'
import { type Balancer, startBalancer } from '../../scripts/balance.js'
import { memoryStorage, type Notification, NotificationClient, type ReadEvent } from '../../src/index.js'
import { mintToken } from '../../src/server/index.js'
import { type Rng, seedFor } from '../chaos/util.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

// Own secret and key: nothing here can authenticate against, or publish to, another test's server.
export const SECRET = 'cluster-secret-0123456789abcdef'
export const API_KEY = 'cluster-api-key-0123'

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/* ------------------------------------------------------------ server processes */

/** Every server process this test process started and has not seen exit: killed on exit, whatever happens. */
const children = new Set<ChildProcess>()
let hooked = false
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const

function killChildrenNow(): void {
  for (const child of children) child.kill('SIGKILL')
  children.clear()
}

/** As test/helpers/services.ts does: kill, then let the signal do what it would have done. */
function onSignal(sig: NodeJS.Signals): void {
  killChildrenNow()
  for (const name of SIGNALS) process.off(name, onSignal)
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig)
}

function track(child: ChildProcess): void {
  children.add(child)
  child.once('exit', () => children.delete(child))
  if (hooked) return
  hooked = true
  process.on('exit', killChildrenNow)
  for (const name of SIGNALS) process.on(name, onSignal)
}

/** One belfry-server process of a cluster. */
export interface Node {
  index: number
  /** http://127.0.0.1:<port> */
  url: string
  /** ws://127.0.0.1:<port>/ws: the process itself, not through the balancer. */
  wsUrl: string
  port: number
  /** False once it has exited (killed or stopped). */
  readonly alive: boolean
  /** SIGKILL: a crash, no shutdown work; resolves once it has exited. */
  kill(): Promise<void>
  /** The end of what it wrote (its log and any crash), for a failure's message. */
  output(): string
}

const OUTPUT_LIMIT = 64 * 1024

/**
 * Runs belfry-server (the CLI, bundled from source by setup.ts) on 127.0.0.1
 * and a free port, and resolves once it prints its URL.
 */
export async function startNode(index: number, env: Record<string, string>): Promise<Node> {
  const { cli } = inject('cluster')
  const child = spawn(process.execPath, [cli], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', BELFRY_SECRET: SECRET, BELFRY_API_KEY: API_KEY, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  track(child)
  let out = ''
  const keep = (d: Buffer) => {
    out += d.toString()
    if (out.length > OUTPUT_LIMIT) out = out.slice(-OUTPUT_LIMIT)
  }
  child.stderr!.on('data', keep)
  let alive = true
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      alive = false
      resolve()
    }),
  )
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      keep(d)
      const m = /belfry server: (http:\/\/\S+?)\/?\s*$/m.exec(out)
      if (m?.[1]) resolve(m[1])
    })
    void exited.then(() => reject(new Error(`belfry-server ${index} exited before it listened:\n${out}`)))
  })
  return {
    index,
    url,
    wsUrl: `${url.replace('http', 'ws')}/ws`,
    port: Number(new URL(url).port),
    get alive() {
      return alive
    },
    async kill() {
      child.kill('SIGKILL')
      await exited
    },
    output: () => out,
  }
}

/* --------------------------------------------------------------------- cluster */

export interface Cluster {
  nodes: Node[]
  balancer: Balancer
  /** ws://127.0.0.1:<balancer>/ws */
  wsUrl: string
  /** The cluster's own database. */
  dbUrl: string
  /** A pool on that database, for the test's own queries (the schema is `belfry`). */
  db: pg.Pool
  /** The processes still running. */
  alive(): Node[]
  /** Kills every process, stops the balancer, closes the pool. */
  stop(): Promise<void>
}

/** A fresh database on the PostgreSQL of `pgUrl` (its `postgres` database); resolves with its URL. */
export async function createDatabase(pgUrl: string, prefix = 'c'): Promise<string> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`
  const client = new pg.Client({ connectionString: pgUrl })
  client.on('error', () => {})
  await client.connect()
  try {
    await client.query(`CREATE DATABASE ${name}`)
  } finally {
    await client.end().catch(() => {})
  }
  return pgUrl.replace(/\/postgres$/, `/${name}`)
}

/**
 * Starts `size` belfry-server processes at once on a new database of the
 * PostgreSQL of `pgUrl` and on the Redis of `redisUrl` (the shared ones unless
 * told; they migrate the fresh schema together), on the Redis channel
 * `channel` (BELFRY_REDIS_CHANNEL; the default unless told), and a balancer in
 * front of them.
 */
export async function startCluster(options: { pgUrl?: string; redisUrl?: string; channel?: string; size?: number } = {}): Promise<Cluster> {
  const shared = inject('cluster')
  const { pgUrl = shared.pgUrl, redisUrl = shared.redisUrl, channel, size = 3 } = options
  const dbUrl = await createDatabase(pgUrl)
  const env = { BELFRY_DATABASE_URL: dbUrl, BELFRY_REDIS_URL: redisUrl, ...(channel && { BELFRY_REDIS_CHANNEL: channel }) }
  const started = await Promise.allSettled(Array.from({ length: size }, (_, i) => startNode(i, env)))
  const nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failed) {
    await Promise.all(nodes.map((n) => n.kill()))
    throw failed.reason
  }
  const balancer = await startBalancer(nodes.map((n) => n.port))
  const db = new pg.Pool({ connectionString: dbUrl, max: 4 })
  // PostgreSQL stopped or restarted by a test: the next query reconnects.
  db.on('error', () => {})
  return {
    nodes,
    balancer,
    wsUrl: `ws://127.0.0.1:${balancer.port}/ws`,
    dbUrl,
    db,
    alive: () => nodes.filter((n) => n.alive),
    async stop() {
      await Promise.all(nodes.map((n) => n.kill()))
      await balancer.close()
      await db.end().catch(() => {})
    },
  }
}

/* ---------------------------------------------------------------------- clients */

/** One NotificationClient (a browser tab) and everything it handed to the app. */
export interface Tab {
  user: string
  client: NotificationClient
  notes: Notification[]
  reads: ReadEvent[]
  statuses: { to: string; at: number }[]
  /** Whether it is online now. */
  online(): boolean
}

/** Makes and connects one client per (user, tab) through `url`, and waits until all are online. */
export async function openTabs(url: string, users: readonly string[], tabsPerUser: number, timeoutMs = 30_000): Promise<Tab[]> {
  const tabs: Tab[] = []
  for (let t = 0; t < tabsPerUser; t++) for (const user of users) tabs.push(openTab(url, user))
  await Promise.all(tabs.map((tab) => tab.client.ready({ timeout: timeoutMs })))
  return tabs
}

export function openTab(url: string, user: string): Tab {
  const client = new NotificationClient({
    url,
    token: () => mintToken(SECRET, user),
    WebSocket,
    storage: memoryStorage(),
    backoff: { initial: 50, max: 500 },
    watchNetwork: false,
  })
  const tab: Tab = {
    user,
    client,
    notes: [],
    reads: [],
    statuses: [],
    online: () => client.state === 'online',
  }
  client.on('notification', (n) => tab.notes.push(n))
  client.on('read', (e) => tab.reads.push(e))
  client.on('status', (s) => tab.statuses.push({ to: s.to, at: Date.now() }))
  client.connect()
  return tab
}

export function closeTabs(tabs: readonly Tab[]): void {
  for (const tab of tabs) tab.client.close()
}

/* ------------------------------------------------------------------- publishing */

export type Audience = { userId: string } | { userIds: string[] } | { topic: string } | { broadcast: true }

/** One publish of a stream and what became of it. */
export interface Sent {
  k: number
  title: string
  audience: Audience
  node: number
  /** The HTTP status, or `error` when no answer came (the process died, the connection was cut). */
  status: number | 'error'
  id?: string
  recipients?: number
  detail?: string
}

/** POSTs a notification to one process; never rejects. */
export async function publish(node: Node, k: number, audience: Audience, title = `n${k}`): Promise<Sent> {
  const sent: Sent = { k, title, audience, node: node.index, status: 'error' }
  try {
    const res = await fetch(`${node.url}/api/notifications`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ ...audience, title, body: `body of ${title}`, data: { k } }),
      signal: AbortSignal.timeout(15_000),
    })
    sent.status = res.status
    const json = (await res.json()) as { ids?: string[]; recipients?: number; message?: string }
    if (res.status === 201) {
      sent.id = json.ids?.[0] ?? ''
      sent.recipients = json.recipients ?? -1
    } else sent.detail = json.message ?? ''
  } catch (error) {
    sent.detail = (error as Error).message
  }
  return sent
}

/** GET /healthz of one process (with the API key: its counts too): its status code and body (`error` when it does not answer). */
export async function health(node: Node): Promise<{ status: number | 'error'; body: Record<string, unknown> }> {
  try {
    const res = await fetch(`${node.url}/healthz`, { headers: { authorization: `Bearer ${API_KEY}` }, signal: AbortSignal.timeout(10_000) })
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  } catch (error) {
    return { status: 'error', body: { error: (error as Error).message } }
  }
}

/** The seed for one test: CLUSTER_SEED when set, else a fresh one; printed either way. */
export const seeded = (name: string): Rng => seedFor(name, 'CLUSTER_SEED', 'cluster')

/** A random audience among `users` and `topics` (whose subscribers the test made). */
export function randomAudience(r: Rng, users: readonly string[], topics: readonly string[]): Audience {
  const x = r.next()
  if (x < 0.4) return { userId: r.pick(users) }
  if (x < 0.7) return { userIds: r.sample(users, r.int(2, 10)) }
  if (x < 0.85 && topics.length > 0) return { topic: r.pick(topics) }
  return { broadcast: true }
}

/**
 * A stream of publishes, `concurrency` at a time, each to a random live
 * process, until `stop()`; `acked` counts the 201s so far.
 */
export function stream(
  cluster: Cluster,
  r: Rng,
  next: (k: number) => Audience,
  options: { concurrency?: number; pauseMs?: number; firstK?: number } = {},
): { sent: Sent[]; acked(): number; stop(): Promise<Sent[]> } {
  const { concurrency = 3, pauseMs = 10, firstK = 0 } = options
  const sent: Sent[] = []
  let k = firstK
  let running = true
  const worker = async () => {
    while (running) {
      const live = cluster.alive()
      if (live.length === 0) break
      const n = k++
      sent.push(await publish(r.pick(live), n, next(n)))
      await sleep(pauseMs)
    }
  }
  const workers = Array.from({ length: concurrency }, worker)
  return {
    sent,
    acked: () => sent.filter((s) => s.status === 201).length,
    async stop() {
      running = false
      await Promise.all(workers)
      return sent.sort((a, b) => a.k - b.k)
    },
  }
}

/** Resolves once `check` is true, polling every 20 ms; rejects with `what` after `ms`. */
export async function until(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`)
    await sleep(20)
  }
}

/* ----------------------------------------------------------------------- checks */

/** One inbox entry, as the store has it. */
export interface Entry {
  seq: number
  id: string
  title: string
}

/** The users' inboxes in the store (the truth), in seq order. */
export async function inboxes(db: pg.Pool, users: readonly string[]): Promise<Map<string, Entry[]>> {
  const { rows } = await db.query<Entry & { user: string; seq: string | number }>(
    `SELECT u.id AS "user", i.seq, n.id, n.title
     FROM belfry.inbox i JOIN belfry.users u ON u.no = i.user_no JOIN belfry.notifications n ON n.no = i.notification_no
     WHERE u.id = ANY($1) ORDER BY u.id, i.seq`,
    [users],
  )
  const map = new Map<string, Entry[]>(users.map((u) => [u, []]))
  for (const row of rows) map.get(row.user)!.push({ seq: Number(row.seq), id: row.id, title: row.title })
  return map
}

/** What a tab handed to the app, in the shape of the store's entries. */
const handed = (tab: Tab): Entry[] => tab.notes.map((n) => ({ seq: n.seq, id: n.id, title: n.title }))

/**
 * Waits until every tab has handed to the app as many notifications as its
 * user's inbox holds, then checks that each holds exactly that inbox (seqs
 * 1..n, the same ids, once each, in order) and that nothing more arrives for
 * a while. Resolves with the inboxes.
 */
export async function expectEveryTabHasItsInbox(cluster: Cluster, tabs: readonly Tab[], ms = 30_000): Promise<Map<string, Entry[]>> {
  const users = [...new Set(tabs.map((t) => t.user))]
  const store = await inboxes(cluster.db, users)
  const behind = () => tabs.filter((t) => t.notes.length < store.get(t.user)!.length)
  try {
    await until(() => behind().length === 0, ms, 'every tab has its user’s inbox')
  } catch (error) {
    const lagging = behind()
    console.log(
      `[cluster] ${lagging.length} tab(s) behind, e.g.`,
      lagging.slice(0, 5).map((t) => ({ user: t.user, has: t.notes.length, of: store.get(t.user)!.length, state: t.client.state })),
    )
    throw error
  }
  // Late duplicates would show here.
  await sleep(300)
  const wrong = tabs.filter((t) => JSON.stringify(handed(t)) !== JSON.stringify(store.get(t.user)))
  expect(
    wrong.slice(0, 3).map((t) => ({ user: t.user, got: handed(t).map((e) => e.seq), inbox: store.get(t.user)!.map((e) => e.seq) })),
    `${wrong.length} of ${tabs.length} tabs differ from their inbox`,
  ).toEqual([])
  for (const t of tabs) expect(t.notes.map((n) => n.seq)).toEqual(store.get(t.user)!.map((_, i) => i + 1))
  return store
}

/** Every publish answered 201 is in the store once for each of its recipients, and the recipients count matches. */
export async function expectAckedStored(cluster: Cluster, sent: readonly Sent[]): Promise<void> {
  const acked = sent.filter((s) => s.status === 201)
  const { rows } = await cluster.db.query<{ id: string; entries: string; users: string }>(
    `SELECT n.id, count(*) AS entries, count(DISTINCT i.user_no) AS users
     FROM belfry.notifications n JOIN belfry.inbox i ON i.notification_no = n.no WHERE n.id = ANY($1) GROUP BY n.id`,
    [acked.map((s) => s.id)],
  )
  const byId = new Map(rows.map((r) => [r.id, { entries: Number(r.entries), users: Number(r.users) }]))
  const wrong = acked.filter((s) => {
    const got = byId.get(s.id!)
    return !got || got.entries !== s.recipients || got.users !== s.recipients
  })
  expect(
    wrong.slice(0, 5).map((s) => ({ k: s.k, recipients: s.recipients, stored: byId.get(s.id!) })),
    'publishes answered 201 but not stored once per recipient',
  ).toEqual([])
}

/** Every acked publish reached each recipient tab (by id), with the ids of the store. */
export function expectAckedDelivered(tabs: readonly Tab[], sent: readonly Sent[], store: Map<string, Entry[]>): void {
  const ids = new Map([...store].map(([user, entries]) => [user, new Set(entries.map((e) => e.id))]))
  for (const s of sent) {
    if (s.status !== 201) continue
    const a = s.audience
    const users = 'userId' in a ? [a.userId] : 'userIds' in a ? a.userIds : []
    for (const u of users) if (ids.has(u)) expect(ids.get(u)!.has(s.id!), `publish ${s.k} (201) in ${u}'s inbox`).toBe(true)
  }
  for (const tab of tabs) {
    const got = new Set(tab.notes.map((n) => n.id))
    for (const id of ids.get(tab.user)!) if (!got.has(id)) expect.fail(`${tab.user} did not get ${id}`)
  }
}

/* ---------------------------------------------------------------------- scenario */

/** Subscribes users to topics through SQL (the store's table), before any publish. */
export async function subscribeAll(cluster: Cluster, topics: Readonly<Record<string, readonly string[]>>): Promise<void> {
  for (const [topic, users] of Object.entries(topics)) {
    await cluster.db.query(
      'INSERT INTO belfry.subscriptions (topic, user_no) SELECT $1, no FROM belfry.users WHERE id = ANY($2) ORDER BY no ON CONFLICT DO NOTHING',
      [topic, users],
    )
  }
}

/**
 * A stream of publishes with a failure in the middle. First a broadcast that
 * every tab must get (so each has a cursor); then publishes to random live
 * processes until `before` are acknowledged; then `chaos(pause)`, while the
 * stream goes on (`pause()` stops it, at the point of the failure the test
 * chooses). With `checkpoint`, the stream stops once `chaos` returns at the
 * latest, and every tab must hold its user's inbox within `checkpoint` ms:
 * what was published during the failure has reached the other processes'
 * clients through the store (a reconcile), since no later publish shows them
 * a gap. Then the stream goes on until `after` more are acknowledged.
 * Resolves with every publish and what became of it.
 */
export async function scenario(
  cluster: Cluster,
  tabs: readonly Tab[],
  r: Rng,
  options: {
    users: readonly string[]
    topics: readonly string[]
    before: number
    after: number
    chaos: (pause: () => Promise<void>) => Promise<void>
    checkpoint?: number
  },
): Promise<Sent[]> {
  const next = () => randomAudience(r, options.users, options.topics)
  const first = await publish(cluster.nodes[0]!, 0, { broadcast: true }, 'first')
  expect(first.status).toBe(201)
  await until(() => tabs.every((t) => t.notes.some((n) => n.id === first.id)), 30_000, 'every tab has the first broadcast')
  const sent = [first]
  let s = stream(cluster, r, next, { firstK: 1 })
  let stopped: Promise<void> | undefined
  const pause = () => {
    stopped ??= s.stop().then((done) => void sent.push(...done))
    return stopped
  }
  try {
    await until(() => s.acked() >= options.before, 60_000, `${options.before} publishes acknowledged`)
    await options.chaos(pause)
    if (options.checkpoint !== undefined) {
      await pause()
      await expectEveryTabHasItsInbox(cluster, tabs, options.checkpoint)
      s = stream(cluster, r, next, { firstK: sent.length + 1 })
      stopped = undefined
    }
    const mark = s.acked()
    await until(() => s.acked() >= mark + options.after, 60_000, `${options.after} more publishes acknowledged after the failure`)
  } finally {
    await pause()
  }
  return sent.sort((a, b) => a.k - b.k)
}
