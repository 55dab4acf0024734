/**
 * Crash: the server process is killed with SIGKILL in the middle of a stream
 * of HTTP publishes, while 20 NotificationClients (5 users × 4) are connected,
 * and restarted on the same database (on a new port: the clients' `url` is a
 * function that yields the current one). Every publish answered 201 must reach
 * every client of every recipient exactly once, in seq order.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { mintToken } from '../../src/server/index.js'
import { type ServerProcess, spawnServer } from '../helpers/process.js'
import { rawClient } from '../helpers/server.js'
import { tombstone } from './proxy.js'
import { type Recorded, range, recordedClient, seedFor, sleep, strictlyIncreasing } from './util.js'

// Own secret and key: nothing here can authenticate against, or publish to, another test's server.
const SECRET = 'chaos-crash-secret-0123456789'
const API_KEY = 'chaos-crash-key-0123'
const USERS = ['u0', 'u1', 'u2', 'u3', 'u4'] as const
const CLIENTS_PER_USER = 4
const CONCURRENCY = 4
const AFTER_RESTART = 60
/** Safety bound on the whole stream (the down phase is paced, so it stays far below). */
const MAX_PUBLISHES = 3000

const dirs: string[] = []
const processes: ServerProcess[] = []
const clients: { user: string; r: Recorded }[] = []
const tombs: { close(): Promise<void> }[] = []

async function cleanUp(): Promise<void> {
  for (const { r } of clients.splice(0)) r.client.close()
  for (const p of processes.splice(0)) p.child.kill('SIGKILL')
  for (const t of tombs.splice(0)) await t.close()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
}

/** The CLI prints a localhost URL; stay on IPv4 loopback. */
const loopback = (url: string) => url.replace('//localhost:', '//127.0.0.1:')

type Outcome = 'committed' | 'refused' | 'unknown' | 'unexpected'
interface Publish {
  k: number
  recipients: readonly string[]
  outcome?: Outcome
  id?: string | undefined
  detail?: string
}

/** One user's inbox as the server has it, from seq 1, paging through replay rounds. */
async function inbox(wsUrl: string, user: string): Promise<{ seq: number; id: string; k: number }[]> {
  const c = await rawClient(wsUrl)
  c.send({ type: 'auth', token: await mintToken(SECRET, user), since: 0 })
  await c.next((f) => f.type === 'auth_success')
  // The whole inbox, in history pages (newest first): a replay from `since: 0` would start after the user's ack.
  const items: Record<string, unknown>[] = []
  for (let before: number | undefined, page = 0; ; page++) {
    if (page > 100) throw new Error('history does not end')
    const requestId = `h${page}`
    c.send({ type: 'history', limit: 100, requestId, ...(before !== undefined && { before }) })
    const reply = await c.next((f) => f.requestId === requestId)
    items.push(...(reply.items as Record<string, unknown>[]))
    if (reply.next === undefined) break
    before = reply.next as number
  }
  c.close()
  return items.reverse().map((n) => ({ seq: n.seq as number, id: n.id as string, k: (n.data as { k: number }).k }))
}

/**
 * The scenario: 20 clients online, a seeded stream of publishes, SIGKILL at a
 * seeded point, restart on the same database on a new port, 60 more publishes,
 * then every client must hold exactly its user's inbox, in order.
 */
async function crashScenario(): Promise<void> {
  const r = seedFor('crash')
  const dir = mkdtempSync(join(tmpdir(), 'belfry-chaos-crash-'))
  dirs.push(dir)
  const env = { BELFRY_SECRET: SECRET, BELFRY_API_KEY: API_KEY, BELFRY_DB: join(dir, 'belfry.db') }
  const tomb = await tombstone()
  tombs.push(tomb)
  const down = { ws: `ws://127.0.0.1:${tomb.port}/ws`, http: `http://127.0.0.1:${tomb.port}`, generation: -1 }

  const first = await spawnServer(env)
  processes.push(first)
  let current = { ws: loopback(first.wsUrl), http: loopback(first.url), generation: 0 }

  for (const user of USERS) {
    for (let i = 0; i < CLIENTS_PER_USER; i++) {
      clients.push({
        user,
        r: recordedClient({ url: () => current.ws, token: () => mintToken(SECRET, user) }),
      })
    }
  }
  for (const { r: c } of clients) c.client.connect()
  await Promise.all(clients.map(({ r: c }) => c.client.ready()))

  const killAt = r.int(30, 150)
  console.log(`[chaos] crash: SIGKILL at publish #${killAt}`)
  const publishes: Publish[] = []
  let killed = false
  let restarted = false
  let afterRestart = 0
  let restart: Promise<void> | undefined
  let next = 0

  let killedAt = 0
  let restartedAt = 0
  const crash = () => {
    killed = true
    killedAt = performance.now()
    current = down // from now on, clients and publishes meet a port that resets them
    first.child.kill('SIGKILL')
    restart = (async () => {
      await new Promise((resolve) => (first.child.exitCode !== null ? resolve(null) : first.child.once('exit', resolve)))
      const second = await spawnServer(env)
      processes.push(second)
      current = { ws: loopback(second.wsUrl), http: loopback(second.url), generation: 1 }
      restarted = true
      restartedAt = performance.now()
    })()
  }

  /** A seeded audience: one user, several, or everyone. */
  const audience = (): { body: Record<string, unknown>; recipients: readonly string[] } => {
    const roll = r.next()
    if (roll < 0.5) {
      const user = r.pick(USERS)
      return { body: { userId: user }, recipients: [user] }
    }
    if (roll < 0.8) {
      const shuffled = [...USERS].sort(() => r.next() - 0.5)
      const some = shuffled.slice(0, r.int(2, 4))
      return { body: { userIds: some }, recipients: some }
    }
    return { body: { broadcast: true }, recipients: USERS }
  }

  const publishOne = async () => {
    const k = next++
    if (k >= MAX_PUBLISHES) throw new Error('publish stream did not end')
    const { body, recipients } = audience()
    const p: Publish = { k, recipients }
    publishes.push(p)
    const target = current
    // The kill lands while this request (and up to CONCURRENCY - 1 others) is in flight.
    if (k === killAt) setTimeout(crash, r.int(0, 4))
    if (target === down) await sleep(40) // paced while down
    if (target.generation === 1) afterRestart++
    try {
      const res = await fetch(`${target.http}/api/notifications`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
        body: JSON.stringify({ ...body, title: `n${k}`, body: `publish ${k}`, data: { k } }),
      })
      const json = (await res.json()) as { ids?: string[]; recipients?: number }
      if (res.status === 201) {
        p.outcome = 'committed'
        p.id = json.ids?.[0]
        expect(json.recipients, `recipients of #${k}`).toBe(recipients.length)
      } else {
        p.outcome = 'unexpected'
        p.detail = `${res.status} ${JSON.stringify(json)}`
      }
    } catch (error) {
      // The reset port: certainly not committed. The killed server: it may or may not have committed.
      if (target === down) p.outcome = 'refused'
      else if (target.generation === 0 && killed) p.outcome = 'unknown'
      else {
        p.outcome = 'unexpected'
        p.detail = String((error as Error).cause ?? error)
      }
    }
  }

  await Promise.all(
    range(1, CONCURRENCY).map(async () => {
      while (!(restarted && afterRestart >= AFTER_RESTART)) await publishOne()
    }),
  )
  await restart

  const by = (o: Outcome) => publishes.filter((p) => p.outcome === o)
  console.log(
    `[chaos] crash: ${publishes.length} publishes: ${by('committed').length} committed, ` +
      `${by('refused').length} refused while down, ${by('unknown').length} in flight at the kill`,
  )
  expect(by('unexpected').map((p) => `#${p.k}: ${p.detail}`)).toEqual([])
  expect(publishes.filter((p) => p.k < killAt && p.outcome === 'committed').length).toBeGreaterThan(0)

  const second = processes.at(-1)!
  // All 20 come back: they retry every ≤ 500 ms, each time asking the url provider for the current URL.
  await vi.waitFor(
    () => {
      const stuck = clients.filter(({ r: c }) => c.client.state !== 'online')
      const trail = (c: Recorded) => c.statuses.slice(-3).map((s) => `${s.to} (${s.reason})`)
      expect(stuck.map(({ user, r: c }) => `${user}: ${trail(c).join(' → ')}`)).toEqual([])
    },
    { timeout: 12_000, interval: 100 },
  )
  console.log(
    `[chaos] crash: down for ${Math.round(restartedAt - killedAt)} ms; ` +
      `all 20 clients online ${Math.round(performance.now() - restartedAt)} ms after the restart`,
  )
  const storedBy = new Map<string, Set<number>>()
  for (const user of USERS) {
    const mine = (p: Publish) => p.recipients.includes(user)
    const committed = new Map(
      by('committed')
        .filter(mine)
        .map((p) => [p.k, p.id]),
    )
    const maybe = new Set(
      by('unknown')
        .filter(mine)
        .map((p) => p.k),
    )
    const own = clients.filter((c) => c.user === user)

    // Wait until every client of the user holds every committed notification...
    await vi.waitFor(
      () => {
        for (const [i, { r: c }] of own.entries()) {
          const got = new Set(c.notifications.map((n) => (n.data as { k: number }).k))
          const trail = c.statuses.slice(-4).map((s) => `${s.to} (${s.reason})`)
          expect(
            [...committed.keys()].filter((k) => !got.has(k)),
            `${user} client ${i}, ${c.client.state}: ${trail.join(' → ')}`,
          ).toEqual([])
        }
      },
      { timeout: 30_000, interval: 100 },
    )
    // ...then compare with the inbox the restarted server holds.
    const stored = await inbox(loopback(second.wsUrl), user)
    storedBy.set(user, new Set(stored.map((n) => n.k)))
    expect(stored.map((n) => n.seq)).toEqual(range(1, stored.length))
    const storedKs = stored.map((n) => n.k)
    expect(new Set(storedKs).size, `${user}: a publish stored twice`).toBe(storedKs.length)
    for (const [k, id] of committed) expect(stored.find((n) => n.k === k)?.id, `${user}: #${k} answered 201`).toBe(id)
    expect(
      storedKs.filter((k) => !committed.has(k) && !maybe.has(k)),
      `${user}: stored but never answered`,
    ).toEqual([])

    await vi.waitFor(() => {
      for (const { r: c } of own) expect(c.notifications.length).toBeGreaterThanOrEqual(stored.length)
    })
    for (const [i, { r: c }] of own.entries()) {
      const seqs = c.seqs()
      expect(strictlyIncreasing(seqs), `${user} client ${i}: seqs ${seqs.join(',')}`).toBe(true)
      // Exactly the inbox, in order: nothing missing, nothing twice, nothing foreign.
      expect(c.notifications.map((n) => [n.seq, n.id])).toEqual(stored.map((n) => [n.seq, n.id]))
      // And it really went through the crash: it was online, lost the server, and came back.
      expect(c.statuses.filter((s) => s.to === 'online').length, `${user} client ${i} reconnects`).toBeGreaterThanOrEqual(2)
    }
  }
  // A publish cut short by the kill is in all of its recipients' inboxes or in none (one transaction).
  for (const p of by('unknown')) {
    const holders = p.recipients.filter((user) => storedBy.get(user)?.has(p.k))
    expect([0, p.recipients.length], `#${p.k} stored for ${holders.join(',')} of ${p.recipients.join(',')}`).toContain(holders.length)
  }
}

describe('crash', () => {
  afterEach(cleanUp)

  it('every publish answered 201 reaches every client of its recipients exactly once, in order, across SIGKILL and restart', async () => {
    await crashScenario()
  }, 60_000)
})
