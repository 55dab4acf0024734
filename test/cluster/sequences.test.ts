/**
 * Sequence integrity on PostgreSQL under real concurrency: 4 publisher
 * processes (publisher.ts), each with its own PostgresStore on one shared
 * schema, publish a mix of single-user, multi-user, topic and broadcast
 * notifications to 200 users; audiences larger than the small fan-out batch
 * (50) leave fan-out jobs that every process works on while the direct
 * publishes go on. Meanwhile a reader pages `after(user, cursor, limit)` for
 * some users. Every user's seqs must be exactly 1..n, each notification in
 * each recipient's inbox once, the reader must never see a seq skipped, and
 * no failure (deadlock, serialization failure) may escape the store.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { afterAll, expect, inject, it } from 'vitest'
import { PostgresStore } from '../../src/server/index.js'
import { seeded } from './harness.js'
import type { Plan, PlanItem, PublisherReport } from './publisher.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const PUBLISHERS = 4
const PER_PUBLISHER = 60
const FAN_OUT_BATCH = 50
const USERS = Array.from({ length: 200 }, (_, i) => `u${String(i).padStart(3, '0')}`)
/** Topics and their subscribers: two larger than a batch (fan-out jobs), one smaller, one empty. */
const TOPICS: Record<string, string[]> = {
  big: USERS.filter((_, i) => i % 3 !== 0), // 133
  mid: USERS.filter((_, i) => i % 10 < 3), // 60
  small: USERS.filter((_, i) => i % 10 === 0), // 20
  empty: [],
}
/** The users the concurrent reader follows. */
const WATCHED = ['u000', 'u001', 'u002', 'u050', 'u099', 'u100', 'u133', 'u150', 'u198', 'u199']

const children: ChildProcess[] = []
afterAll(() => {
  for (const child of children) child.kill('SIGKILL')
})

/** Starts a publisher process with its plan; resolves once it is ready, with its report to come. */
async function startPublisher(plan: Plan): Promise<{ go(): void; report: Promise<PublisherReport> }> {
  const child = spawn(process.execPath, [inject('cluster').publisher], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
  children.push(child)
  let out = ''
  let err = ''
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString()
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.startsWith('ready\n')) resolve()
    })
    void exited.then((code) => reject(new Error(`publisher exited with ${code} before it was ready: ${err}`)))
  })
  child.stdin!.write(`${JSON.stringify(plan)}\n`)
  await ready
  const report = exited.then((code) => {
    if (code !== 0) throw new Error(`publisher exited with ${code}: ${err}`)
    return JSON.parse(out.trim().split('\n').at(-1)!) as PublisherReport
  })
  report.catch(() => {})
  return { go: () => child.stdin!.end('go\n'), report }
}

it('keeps every user’s seqs 1..n with 4 publisher processes, fan-out jobs and a reader at once', async () => {
  const r = seeded('sequences')
  const schema = `seq_${randomBytes(5).toString('hex')}`
  const url = inject('cluster').pgUrl
  const reader = await PostgresStore.open(url, { schema, poolSize: 2 })
  const db = new pg.Pool({ connectionString: url, max: 2 })
  db.on('error', () => {})
  try {
    // The users in order (their `no` is their index), and the topics' subscribers.
    await db.query(`INSERT INTO ${schema}.users (id) SELECT unnest($1::text[])`, [USERS])
    for (const [topic, users] of Object.entries(TOPICS)) {
      await db.query(
        `INSERT INTO ${schema}.subscriptions (topic, user_no) SELECT $1, no FROM ${schema}.users WHERE id = ANY($2) ORDER BY no`,
        [topic, users],
      )
    }

    // The plans: a seeded mix, each publish in one plan.
    const audienceOf = new Map<number, readonly string[]>()
    const plans: PlanItem[][] = Array.from({ length: PUBLISHERS }, () => [])
    for (let k = 0; k < PUBLISHERS * PER_PUBLISHER; k++) {
      const x = r.next()
      const topic = r.pick(Object.keys(TOPICS))
      const item: PlanItem =
        x < 0.35
          ? { k, audience: { userIds: [r.pick(USERS)] } }
          : x < 0.6
            ? { k, audience: { userIds: r.sample(USERS, r.int(2, 40)) } }
            : x < 0.85
              ? { k, audience: { topic } }
              : { k, audience: { broadcast: true } }
      const a = item.audience
      audienceOf.set(k, 'userIds' in a ? a.userIds : 'topic' in a ? TOPICS[a.topic]! : USERS)
      plans[k % PUBLISHERS]!.push(item)
    }

    const publishers = await Promise.all(
      plans.map((items) => startPublisher({ url, schema, fanOutBatch: FAN_OUT_BATCH, concurrency: 3, fanOutDrivers: 2, items })),
    )

    // The reader: pages each watched user's inbox in small pages; the cursor may only move through consecutive seqs.
    let publishing = true
    const cursors = new Map(WATCHED.map((u) => [u, 0]))
    const skips: string[] = []
    let pagesWhilePublishing = 0
    const read = async () => {
      for (;;) {
        const wasPublishing = publishing
        let moved = false
        for (const u of WATCHED) {
          const cursor = cursors.get(u)!
          const page = await reader.after(u, cursor, 5)
          page.forEach((n, i) => {
            if (n.seq !== cursor + i + 1) skips.push(`${u}: after ${cursor} got seqs ${page.map((p) => p.seq).join(',')}`)
          })
          if (page.length > 0) {
            cursors.set(u, page.at(-1)!.seq)
            moved = true
            if (wasPublishing) pagesWhilePublishing++
          }
        }
        if (!wasPublishing && !moved) return
      }
    }

    const t0 = Date.now()
    for (const p of publishers) p.go()
    const reading = read()
    const reports = await Promise.all(publishers.map((p) => p.report))
    publishing = false
    await reading
    console.log(
      `[cluster] sequences: ${PUBLISHERS * PER_PUBLISHER} publishes in ${Date.now() - t0} ms; fan-out batches per process ${reports
        .map((p) => p.batches)
        .join('/')}; reader pages while publishing: ${pagesWhilePublishing}`,
    )

    // Nothing failed, everything was published, every fan-out job finished.
    expect(reports.flatMap((p) => p.failures)).toEqual([])
    const published = reports.flatMap((p) => p.published)
    expect(published.map((p) => p.k).sort((a, b) => a - b)).toEqual([...audienceOf.keys()])
    expect(published.filter((p) => p.pending).length).toBeGreaterThan(10)
    expect((await db.query(`SELECT count(*)::int AS n FROM ${schema}.fanout_jobs`)).rows[0].n).toBe(0)

    // Every user's seqs are exactly 1..n, n being the publishes that were meant for the user.
    const { rows: seqRows } = await db.query<{ id: string; latest: number; seqs: number[] }>(
      `SELECT u.id, u.latest_seq::int AS latest, coalesce(array_agg(i.seq::int ORDER BY i.seq) FILTER (WHERE i.seq IS NOT NULL), '{}') AS seqs
       FROM ${schema}.users u LEFT JOIN ${schema}.inbox i ON i.user_no = u.no GROUP BY u.no ORDER BY u.id`,
    )
    expect(seqRows.map((row) => row.id)).toEqual(USERS)
    for (const row of seqRows) {
      const n = [...audienceOf.values()].filter((a) => a.includes(row.id)).length
      expect(row.seqs, row.id).toEqual(Array.from({ length: n }, (_, i) => i + 1))
      expect(row.latest, row.id).toBe(n)
    }

    // Each notification is in each recipient's inbox once, and nowhere else.
    const { rows: perNotification } = await db.query<{ id: string; users: string[]; entries: number }>(
      `SELECT n.id, array_agg(u.id ORDER BY u.id) AS users, count(*)::int AS entries
       FROM ${schema}.notifications n JOIN ${schema}.inbox i ON i.notification_no = n.no JOIN ${schema}.users u ON u.no = i.user_no
       GROUP BY n.id`,
    )
    const byId = new Map(perNotification.map((row) => [row.id, row]))
    for (const p of published) {
      const audience = [...new Set(audienceOf.get(p.k)!)].sort()
      expect(p.recipients, `publish ${p.k}`).toBe(audience.length)
      expect(byId.get(p.id)?.users ?? [], `publish ${p.k}`).toEqual(audience)
      expect(byId.get(p.id)?.entries ?? 0, `publish ${p.k}`).toBe(audience.length)
    }

    // The reader saw no seq skipped, read while the publishers ran, and ended at each user's latest seq.
    expect(skips).toEqual([])
    expect(pagesWhilePublishing).toBeGreaterThan(0)
    const latest = await reader.latestSeqs(WATCHED)
    expect(Object.fromEntries(cursors)).toEqual(Object.fromEntries([...latest].map(([user, { seq }]) => [user, seq])))
  } finally {
    await reader.close()
    await db.end()
  }
})
