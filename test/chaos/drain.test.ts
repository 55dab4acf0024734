/**
 * Drain: a rolling deploy on one address. 500 NotificationClients (100 users
 * × 5, the client's default backoff) are connected through a TCP proxy (the
 * load balancer) to server A, the CLI on a SQLite file. Successor B starts on
 * the same file, the proxy sends new connections to B, and A gets SIGTERM
 * with BELFRY_DRAIN_MS=8000 while publishes go on (through the proxy, and some
 * straight to the draining A). A must exit 0 within the drain and its grace;
 * every client must come back on B and hold its user's inbox exactly once, in
 * order; and the reconnects must be spread: no 100 ms window with more than
 * 10% of them.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { mintToken } from '../../src/server/index.js'
import { type ServerProcess, spawnServer } from '../helpers/process.js'
import { ChaosProxy } from './proxy.js'
import { type Recorded, range, recordedClient, sleep, strictlyIncreasing, within } from './util.js'

// Own secret and key: nothing here can authenticate against, or publish to, another test's server.
const SECRET = 'chaos-drain-secret-0123456789'
const API_KEY = 'chaos-drain-key-0123'
const USERS = range(0, 99).map((i) => `u${i}`)
const CLIENTS_PER_USER = 5
/** Longer than the default (5000): on a loaded machine a stalled process bunches what it handles late; 8 s leaves room. */
const DRAIN_MS = 8000
/** Exit allowed after the drain: the close handshakes' grace (2 s), the store's close, and a loaded machine. */
const EXIT_SLACK_MS = 7000
const WINDOW_MS = 100

const dirs: string[] = []
const processes: ServerProcess[] = []
const clients: { user: string; r: Recorded; back?: number; lost?: number }[] = []
const proxies: ChaosProxy[] = []

afterEach(async () => {
  for (const { r } of clients.splice(0)) r.client.close()
  for (const p of processes.splice(0)) p.child.kill('SIGKILL')
  for (const p of proxies.splice(0)) await p.close()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/** POSTs a publish on a connection of its own (no keep-alive: a pooled connection would stay on A). */
function post(base: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL('/api/notifications', base),
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` } },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      },
    )
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
}

/** Reconnects per window of `width` ms from the first: the per-100 ms histogram. */
function histogram(times: readonly number[], width: number): number[] {
  const counts: number[] = []
  for (const t of times) {
    const i = Math.floor(t / width)
    while (counts.length <= i) counts.push(0)
    counts[i] = (counts[i] ?? 0) + 1
  }
  return counts
}

describe('drain', () => {
  it('SIGTERM: exit 0 within the grace, every client back on the successor and caught up, reconnects spread over the drain window', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-chaos-drain-'))
    dirs.push(dir)
    const env = {
      BELFRY_SECRET: SECRET,
      BELFRY_API_KEY: API_KEY,
      BELFRY_DB: join(dir, 'belfry.db'),
      BELFRY_DRAIN_MS: String(DRAIN_MS),
      HOST: '127.0.0.1',
    }
    const a = await spawnServer(env)
    processes.push(a)
    const port = (url: string) => Number(new URL(url).port)
    const proxy = new ChaosProxy({ host: '127.0.0.1', port: port(a.url) })
    proxies.push(proxy)
    const address = `127.0.0.1:${await proxy.listen()}`

    for (const user of USERS) {
      for (let i = 0; i < CLIENTS_PER_USER; i++) {
        // The client's own backoff (full jitter up to 500 ms at first): what a browser would do.
        const r = recordedClient({ url: `ws://${address}/ws`, token: () => mintToken(SECRET, user), backoff: { initial: 500 } })
        clients.push({ user, r })
      }
    }
    for (const { r } of clients) r.client.connect()
    await within(Promise.all(clients.map(({ r }) => r.client.ready())), 30_000, '500 clients online on A')

    const committed = new Set<number>()
    /** Publishes whose answer was lost with A's connection: each may be stored, or not. */
    const unknown = new Set<number>()
    /** Publish k goes to 10 of the users (50 clients), in turn: every user gets one in ten. */
    const recipients = (n: number) => USERS.filter((_, i) => i % 10 === n % 10)
    let k = 0
    let onA = 0
    const publish = async (toA = false): Promise<void> => {
      const n = k++
      const body = { userIds: recipients(n), title: `n${n}`, body: '', data: { k: n } }
      if (toA) {
        try {
          const status = await post(a.url, body)
          if (status === 201) {
            committed.add(n)
            onA++
            return
          }
          expect(status, `#${n} on the draining A`).toBe(503) // A closing: nothing stored
        } catch {
          unknown.add(n) // A went away with the request (or had stopped listening)
        }
        return publish()
      }
      expect(await post(`http://${address}`, body), `#${n}`).toBe(201)
      committed.add(n)
    }
    for (let i = 0; i < 10; i++) await publish()

    // The successor, on the same file (SQLite in WAL mode takes two processes), behind the same address.
    const b = await spawnServer(env)
    processes.push(b)
    proxy.target = { host: '127.0.0.1', port: port(b.url) }

    const t0 = performance.now()
    for (const c of clients) {
      c.r.client.on('status', (s) => {
        if (s.to === 'online') c.back = performance.now() - t0
        if (s.to === 'reconnecting') c.lost ??= performance.now() - t0
      })
    }
    const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
      a.child.once('exit', (code) => resolve({ code, at: performance.now() - t0 })),
    )
    a.child.kill('SIGTERM')
    let exit: { code: number | null; at: number } | undefined
    void exited.then((e) => {
      exit = e
    })
    // Publishes during the drain: through the address (to B), and every third straight to A.
    for (let i = 0; exit === undefined; i++) {
      await publish(i % 3 === 0)
      await sleep(100)
    }
    for (let i = 0; i < 10; i++) await publish()

    expect(exit.code, a.stderr()).toBe(0)
    expect(exit.at).toBeLessThan(DRAIN_MS + EXIT_SLACK_MS)

    await vi.waitFor(
      () => {
        const behind = clients.filter(({ user, r }) => {
          const got = new Set(r.notifications.map((n) => (n.data as { k: number }).k))
          return r.client.state !== 'online' || [...committed].some((n) => recipients(n).includes(user) && !got.has(n))
        })
        expect(behind.map(({ user, r }) => `${user} ${r.client.state}`).slice(0, 5)).toEqual([])
      },
      { timeout: 20_000, interval: 100 },
    )
    const byUser = new Map<string, Recorded[]>()
    for (const { user, r } of clients) byUser.set(user, [...(byUser.get(user) ?? []), r])
    for (const [user, own] of byUser) {
      const first = own[0]!.notifications.map((n) => [n.seq, n.id])
      for (const [i, r] of own.entries()) {
        const ks = r.notifications.map((n) => (n.data as { k: number }).k)
        // The inbox from seq 1, gap-free: nothing lost; strictly increasing: nothing twice, in order.
        expect(r.seqs(), `${user} client ${i}`).toEqual(range(1, r.seqs().length))
        expect(strictlyIncreasing(ks), `${user} client ${i}: ${ks.join(',')}`).toBe(true)
        expect(
          ks.filter((n) => !(committed.has(n) || unknown.has(n)) || !recipients(n).includes(user)),
          `${user} client ${i}: never answered, or not for this user`,
        ).toEqual([])
        expect(
          r.notifications.map((n) => [n.seq, n.id]),
          `${user} client ${i}`,
        ).toEqual(first)
      }
    }
    // Every client is on B now.
    const health = await fetch(`${b.url}/healthz`, { headers: { authorization: `Bearer ${API_KEY}` } })
    expect(await health.json()).toMatchObject({ status: 'ok', connections: clients.length })

    const back = clients.map((c) => c.back)
    expect(back.filter((t) => t === undefined).length, 'clients that did not come back').toBe(0)
    const counts = histogram(back as number[], WINDOW_MS)
    const peak = Math.max(...counts)
    console.log(
      `[chaos] drain: ${clients.length} clients, drainMs ${DRAIN_MS}, A exited ${exit.code} after ${Math.round(exit.at)} ms; ` +
        `${committed.size} publishes (${onA} on the draining A, ${unknown.size} unanswered); reconnects per ${WINDOW_MS} ms: ${counts.join(' ')} (peak ${peak})`,
      `closes as the clients saw them: ${histogram(
        clients.map((c) => c.lost ?? 0),
        WINDOW_MS,
      ).join(' ')}`,
    )
    expect(peak).toBeLessThanOrEqual(clients.length / 10)
  }, 60_000)
})
