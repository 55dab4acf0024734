/**
 * Crash points: a server on SQLite is SIGKILLed at chosen moments — right
 * after a store call committed (a publish, a fan-out batch, a mark, a retention batch, a
 * subscribe) and before the server acted on it, or as a fan-out batch starts — while it takes
 * targeted, broadcast and topic publishes (fan-out jobs with a small `fanOutBatch`), keyed
 * publishes, marks and subscriptions. Then it is restarted on the same file, and:
 * - every fan-out job is finished, each recipient given one entry;
 * - every publish answered 201 is in each recipient's inbox once; a keyed one retried answers
 *   the same id with `Idempotent-Replayed: true`;
 * - each inbox is floor+1..latest without a gap; the unread count is its unread entries; each
 *   notification's refs are its entries, and none is left that no inbox holds;
 * - what a `read` reply confirmed is read.
 *
 * The server is test/chaos/crash-runner.ts (the options the CLI does not expose, and the
 * kill point).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { mintToken } from '../../src/server/index.js'
import type { RunnerConfig } from './crash-runner.js'
import { rng, sleep } from './util.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SECRET = 'crash-points-secret-0123456789'
const API_KEY = 'crash-points-key'
const USERS = Array.from({ length: 8 }, (_, i) => `u${i}`)
const BACKGROUND = Array.from({ length: 60 }, (_, i) => `bg${i}`)
const TOPICS = ['ta', 'tb']

interface Runner {
  child: ChildProcess
  url: string
  exited: Promise<void>
  alive(): boolean
}

const children = new Set<ChildProcess>()
const dirs: string[] = []
afterEach(() => {
  for (const child of children) child.kill('SIGKILL')
  children.clear()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

async function runner(config: Omit<RunnerConfig, 'secret' | 'apiKey'>): Promise<Runner> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/chaos/crash-runner.ts'], {
    cwd: ROOT,
    env: { ...process.env, CRASH_RUNNER: JSON.stringify({ secret: SECRET, apiKey: API_KEY, ...config }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.add(child)
  let out = ''
  let err = ''
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString()
  })
  let dead = false
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      dead = true
      children.delete(child)
      resolve()
    }),
  )
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /belfry server: (http:\/\/\S+?)\/?\s*$/m.exec(out)
      if (m?.[1]) resolve(m[1])
    })
    void exited.then(() => reject(new Error(`the runner exited before it listened: ${err}`)))
  })
  return { child, url, exited, alive: () => !dead }
}

async function post(
  url: string,
  body: unknown,
  key?: string,
): Promise<{ status: number | 'error'; json?: { ids?: string[]; recipients?: number }; replayed?: string | null }> {
  try {
    const res = await fetch(`${url}/api/notifications`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}`, ...(key && { 'idempotency-key': key }) },
      body: JSON.stringify(body),
    })
    return { status: res.status, json: (await res.json()) as { ids?: string[] }, replayed: res.headers.get('idempotent-replayed') }
  } catch {
    return { status: 'error' }
  }
}

interface Sent {
  k: number
  body: Record<string, unknown>
  key: string | undefined
  status: number | 'error'
  id?: string | undefined
  recipients?: number | undefined
}
interface Confirmed {
  user: string
  ids: string[]
  all: boolean
  seq: number
}

/** A user's socket: marks what it was sent (by id, or all), subscribes and gives up topics, until the server dies. */
async function busyClient(url: string, user: string, seed: number, confirmed: Confirmed[], stop: () => boolean): Promise<void> {
  const r = rng(seed)
  const ws = new WebSocket(`${url.replace('http', 'ws')}/ws`)
  ws.on('error', () => {})
  const seen: string[] = []
  ws.on('message', (data) => {
    const f = JSON.parse(data.toString()) as Record<string, unknown>
    if (f.type === 'notification') seen.push(f.id as string)
    if (f.type === 'read' && typeof f.requestId === 'string') {
      confirmed.push({ user, ids: f.ids as string[], all: f.all === true, seq: f.seq as number })
    }
  })
  const opened = await new Promise<boolean>((resolve) => {
    ws.once('open', () => resolve(true))
    ws.once('close', () => resolve(false))
  })
  if (!opened) return
  ws.send(JSON.stringify({ type: 'auth', token: await mintToken(SECRET, user), since: 0 }))
  for (let n = 0; !stop() && ws.readyState === WebSocket.OPEN; n++) {
    await sleep(r.int(5, 25))
    const x = r.next()
    const requestId = `q${n}`
    if (x < 0.35 && seen.length > 0)
      ws.send(JSON.stringify({ type: 'mark_read', ids: r.sample(seen, Math.min(3, seen.length)), requestId }))
    else if (x < 0.45) ws.send(JSON.stringify({ type: 'mark_read', all: true, requestId }))
    else if (x < 0.7) ws.send(JSON.stringify({ type: 'subscribe', topics: [r.pick(TOPICS)], requestId }))
    else if (x < 0.8) ws.send(JSON.stringify({ type: 'unsubscribe', topics: [r.pick(TOPICS)], requestId }))
  }
  ws.terminate()
}

/** Publishes until the server dies (or `count` are sent): to users, to everyone, to a topic; some with a key; with `prune`, retention passes too. */
async function publisher(url: string, seed: number, sent: Sent[], stop: () => boolean, count: number, prune: boolean): Promise<void> {
  const r = rng(seed)
  for (let i = 0; i < count && !stop(); i++) {
    // With retention, a pass now and then (the admin API's), besides the one at start.
    if (prune && i % 8 === 7) {
      await fetch(`${url}/api/admin/prune`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}` } }).catch(() => {})
    }
    const x = r.next()
    const audience =
      x < 0.35
        ? { userId: r.pick(USERS) }
        : x < 0.55
          ? { userIds: r.sample(USERS, r.int(2, 5)) }
          : x < 0.8
            ? { broadcast: true }
            : { topic: r.pick(TOPICS) }
    const k = sent.length
    const body = { ...audience, title: `n${k}`, body: `publish ${k}` }
    const key = r.chance(0.4) ? `key-${seed}-${i}` : undefined
    const s: Sent = { k, body, key, status: 'error' }
    sent.push(s)
    const res = await post(url, body, key)
    s.status = res.status
    if (res.status === 201) {
      s.id = res.json?.ids?.[0]
      s.recipients = res.json?.recipients
    }
  }
}

/** The store's own invariants, read from the file with no server on it. */
function storeProblems(file: string): string[] {
  const db = new Database(file, { readonly: true })
  const problems: string[] = []
  try {
    const users = db.prepare('SELECT no, id, latest_seq AS latest, acked_seq AS acked, unread, floor_seq AS floor FROM users').all() as {
      no: number
      id: string
      latest: number
      acked: number
      unread: number
      floor: number
    }[]
    for (const u of users) {
      const rows = db.prepare('SELECT seq, read, notification_no AS n FROM inbox WHERE user_no = ? ORDER BY seq').all(u.no) as {
        seq: number
        read: number
        n: number
      }[]
      const seqs = rows.map((row) => row.seq)
      const expected = Array.from({ length: u.latest - u.floor }, (_, i) => u.floor + 1 + i)
      if (JSON.stringify(seqs) !== JSON.stringify(expected))
        problems.push(`${u.id}: seqs ${seqs.join(',')} (floor ${u.floor}, latest ${u.latest})`)
      const unread = rows.filter((row) => row.read === 0).length
      if (unread !== u.unread) problems.push(`${u.id}: unread count ${u.unread}, ${unread} unread entries`)
      if (u.acked > u.latest) problems.push(`${u.id}: acked ${u.acked} past latest ${u.latest}`)
      if (new Set(rows.map((row) => row.n)).size !== rows.length) problems.push(`${u.id}: a notification twice in the inbox`)
    }
    const notifications = db
      .prepare(
        `SELECT n.no, n.refs, (SELECT count(*) FROM inbox i WHERE i.notification_no = n.no) AS entries,
                (SELECT count(*) FROM fanout_jobs j WHERE j.notification_no = n.no) AS jobs FROM notifications n`,
      )
      .all() as { no: number; refs: number; entries: number; jobs: number }[]
    for (const n of notifications) {
      if (n.refs !== n.entries) problems.push(`notification ${n.no}: refs ${n.refs}, ${n.entries} entries`)
      if (n.entries === 0 && n.jobs === 0) problems.push(`notification ${n.no}: no inbox holds it`)
    }
    const jobs = (db.prepare('SELECT count(*) AS c FROM fanout_jobs').get() as { c: number }).c
    if (jobs > 0) problems.push(`${jobs} fan-out job(s) left after the restart`)
  } finally {
    db.close()
  }
  return problems
}

/** What was answered and confirmed before the kill, against the store. */
function promiseProblems(file: string, sent: readonly Sent[], confirmed: readonly Confirmed[]): string[] {
  const db = new Database(file, { readonly: true })
  const problems: string[] = []
  try {
    const holders = db.prepare(
      'SELECT u.id FROM inbox i JOIN users u ON u.no = i.user_no JOIN notifications n ON n.no = i.notification_no WHERE n.id = ?',
    )
    for (const s of sent) {
      if (s.status !== 201) continue
      const users = (holders.all(s.id) as { id: string }[]).map((row) => row.id)
      const audience = s.body.userId !== undefined ? [s.body.userId as string] : (s.body.userIds as string[] | undefined)
      if (audience) {
        for (const user of new Set(audience)) {
          const n = users.filter((u) => u === user).length
          if (n !== 1) problems.push(`#${s.k} (201) is in ${user}'s inbox ${n} times`)
        }
      } else if (s.body.broadcast && users.length !== s.recipients) {
        problems.push(`#${s.k} broadcast (201, recipients ${s.recipients}) has ${users.length} entries`)
      }
    }
    const user = db.prepare('SELECT no FROM users WHERE id = ?')
    const unreadUpTo = db.prepare('SELECT count(*) AS c FROM inbox WHERE user_no = ? AND seq <= ? AND read = 0')
    const readOf = db.prepare(
      'SELECT i.read FROM inbox i JOIN notifications n ON n.no = i.notification_no WHERE i.user_no = ? AND n.id = ?',
    )
    for (const c of confirmed) {
      const { no } = user.get(c.user) as { no: number }
      if (c.all && (unreadUpTo.get(no, c.seq) as { c: number }).c > 0)
        problems.push(`${c.user}: read up to ${c.seq} was confirmed, some are unread`)
      for (const id of c.all ? [] : c.ids) {
        if ((readOf.get(no, id) as { read: number } | undefined)?.read === 0)
          problems.push(`${c.user}: ${id} was confirmed read, is unread`)
      }
    }
  } finally {
    db.close()
  }
  return problems
}

/** Waits (up to 10 s) until no fan-out job is left in the file. */
async function jobsDone(file: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const db = new Database(file, { readonly: true })
    const jobs = (db.prepare('SELECT count(*) AS c FROM fanout_jobs').get() as { c: number }).c
    db.close()
    if (jobs === 0) return
    await sleep(100)
  }
}

const CASES: { name: string; kill: NonNullable<RunnerConfig['kill']>; maxPerUser?: number }[] = [
  { name: 'right after a publish commits', kill: { op: 'publish', nth: 12 } },
  { name: 'right after a fan-out batch commits', kill: { op: 'fanOut', nth: 4 } },
  { name: 'as a fan-out batch starts', kill: { op: 'fanOut', nth: 6, when: 'before' } },
  { name: 'right after a mark commits', kill: { op: 'markRead', nth: 6 } },
  { name: 'right after a subscribe commits', kill: { op: 'subscribe', nth: 5 } },
  { name: 'right after a retention batch commits', kill: { op: 'prune', nth: 2 }, maxPerUser: 4 },
]

describe('SIGKILL at chosen points of a busy SQLite server', () => {
  for (const [index, c] of CASES.entries()) {
    it(`${c.name}: restarted on the same file, every 201 is stored once, every job finished, read state and counts whole`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'belfry-crash-points-'))
      dirs.push(dir)
      const file = join(dir, 'belfry.db')
      const base = {
        db: file,
        fanOutBatch: 7,
        pruneBatch: 3,
        ...(c.maxPerUser !== undefined && { retention: { maxPerUser: c.maxPerUser } }),
      }
      // The users exist (broadcasts reach them), and the topics have subscribers.
      const setup = await runner(base)
      expect((await post(setup.url, { userIds: [...USERS, ...BACKGROUND], title: 'seed', body: '' })).status).toBe(201)
      setup.child.kill('SIGKILL')
      await setup.exited

      const busy = await runner({ ...base, kill: c.kill })
      const sent: Sent[] = []
      const confirmed: Confirmed[] = []
      const stop = () => !busy.alive()
      // The kill point is reached well within this much work; if not, the server is killed after it all the same.
      await Promise.all([
        publisher(busy.url, 100 + index, sent, stop, 40, c.maxPerUser !== undefined),
        publisher(busy.url, 200 + index, sent, stop, 40, c.maxPerUser !== undefined),
        ...USERS.slice(0, 4).map((user, i) => busyClient(busy.url, user, 300 + 10 * index + i, confirmed, stop)),
      ])
      const killedByPoint = !busy.alive()
      busy.child.kill('SIGKILL')
      await busy.exited
      expect(killedByPoint, 'the kill point was reached').toBe(true)
      expect(sent.filter((s) => s.status === 201).length).toBeGreaterThan(0)

      const after = await runner(base)
      // The fan-out jobs left are finished by the restarted server.
      await jobsDone(file)
      // A keyed publish retried: the first answer again, nothing stored twice.
      const replays: string[] = []
      for (const s of sent) {
        if (s.key === undefined) continue
        const again = await post(after.url, s.body, s.key)
        if (s.status === 201 && (again.status !== 201 || again.json?.ids?.[0] !== s.id || again.replayed !== 'true')) {
          replays.push(`#${s.k}: ${s.id} answered, retry ${again.status} ${JSON.stringify(again.json)} replayed=${again.replayed}`)
        }
      }
      // A retry of a keyed publish the kill cut short stores it now: its job, if any, finishes too.
      await jobsDone(file)
      after.child.kill('SIGKILL')
      await after.exited
      expect(replays).toEqual([])
      expect(storeProblems(file)).toEqual([])
      // Retention removes a prefix of each inbox: what it took is not looked for.
      if (c.maxPerUser === undefined) expect(promiseProblems(file, sent, confirmed)).toEqual([])
    }, 60_000)
  }
})
