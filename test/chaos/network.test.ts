/**
 * Network faults between a NotificationClient and the server, injected by a
 * TCP proxy (proxy.ts): connection resets at seeded points of a publish
 * stream, and a black hole (nothing forwarded, nothing closed) that only the
 * heartbeat can detect. After each, the client must catch up on everything
 * published meanwhile, exactly once, in seq order.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { startServer, type TestServer } from '../helpers/server.js'
import { ChaosProxy } from './proxy.js'
import { type Recorded, type Rng, range, recordedClient, seedFor, sleep, strictlyIncreasing, within } from './util.js'

/** Heartbeat of the test: a dead link shows within pingInterval + pongTimeout. */
const CLIENT_OPTIONS = { pingInterval: 300, pongTimeout: 300, connectTimeout: 500, ackDelay: 100 }
const USER = 'ann'

let t: TestServer | undefined
let proxy: ChaosProxy | undefined
let rec: Recorded | undefined
afterEach(async () => {
  rec?.client.close()
  await proxy?.close()
  await t?.dispose()
  rec = proxy = t = undefined
})

interface Rig {
  t: TestServer
  proxy: ChaosProxy
  rec: Recorded
  /** Ids in publish order (published one at a time, so also in seq order). */
  ids: string[]
  /** Publishes n notifications to the user, one at a time, with bodies of `size` characters. */
  publish(n: number, size?: number): Promise<void>
  /** Everything published so far, exactly once and in order. */
  caughtUp(): Promise<void>
  online(): number
}

async function rig(): Promise<Rig> {
  // A 1 s server heartbeat, so the server also drops the half-open side of a black hole.
  t = await startServer({ limits: { heartbeatMs: 1000 } })
  const server = t
  proxy = new ChaosProxy({ host: '127.0.0.1', port: server.port })
  const port = await proxy.listen()
  rec = recordedClient({ url: `ws://127.0.0.1:${port}/ws`, token: () => server.token(USER), ...CLIENT_OPTIONS })
  const r = rec
  const ids: string[] = []
  r.client.connect()
  await r.client.ready()
  return {
    t: server,
    proxy,
    rec: r,
    ids,
    async publish(n, size = 0) {
      for (let i = 0; i < n; i++) {
        const k = ids.length
        ids.push((await server.server.sendToUser(USER, { title: `n${k}`, body: 'x'.repeat(size), data: { k } })).id)
      }
    },
    async caughtUp() {
      await vi.waitFor(() => expect(r.notifications.length).toBeGreaterThanOrEqual(ids.length), { timeout: 15_000, interval: 50 })
      expect(strictlyIncreasing(r.seqs())).toBe(true)
      expect(r.seqs()).toEqual(range(1, ids.length))
      expect(r.notifications.map((n) => n.id)).toEqual(ids)
    },
    online: () => r.statuses.filter((s) => s.to === 'online').length,
  }
}

/** Where a reset lands: on a live connection, or on a client on its way back. */
type Phase = 'live' | 'handshake' | 'auth' | 'replay'

/**
 * Resets at seeded points of a stream. Without `anywhere`, each one hits a
 * live connection; with it, each round picks a phase of the client's way
 * back to reset in: its HTTP upgrade (a TCP connection just accepted), its
 * auth (the socket just opened), or its replay (auth just succeeded, with
 * up to tens of KB of backlog behind it).
 */
async function resets(random: Rng, anywhere: boolean): Promise<void> {
  const g = await rig()
  await g.publish(5)
  await g.caughtUp()
  const rounds = anywhere ? 16 : 8
  const hit: Record<string, number> = {}
  const nextStatus = (to: string) =>
    new Promise<void>((resolve) => {
      const off = g.rec.client.on('status', (s) => {
        if (s.to !== to) return
        off()
        resolve()
      })
    })
  let onlineAtReset = 0
  for (let round = 0; round < rounds; round++) {
    const phase: Phase = anywhere && round > 0 ? random.pick(['live', 'handshake', 'auth', 'replay'] as const) : 'live'
    if (phase === 'live') {
      await vi.waitFor(() => expect(g.online()).toBeGreaterThan(onlineAtReset), { timeout: 15_000, interval: 10 })
      if (anywhere) await sleep(random.int(0, 20))
    } else if (phase === 'handshake') {
      const accepted = g.proxy.accepted
      await vi.waitFor(() => expect(g.proxy.accepted).toBeGreaterThan(accepted), { timeout: 15_000, interval: 1 })
    } else {
      const to = phase === 'auth' ? 'authenticating' : 'online'
      await within(nextStatus(to), 15_000, `status ${to}`)
    }
    hit[phase] = (hit[phase] ?? 0) + 1
    onlineAtReset = g.online()
    g.proxy.reset()
    await g.publish(random.int(1, anywhere ? 40 : 15), anywhere ? random.int(0, 3000) : 0) // while the client is away
  }
  await g.caughtUp()
  if (!anywhere) expect(g.rec.statuses.filter((s) => s.reason === 'close 1006').length).toBeGreaterThanOrEqual(rounds)
  console.log(
    `[chaos] network reset${anywhere ? ' anywhere' : ''}: ${g.ids.length} notifications, ${g.online()} times online, ` +
      `${g.proxy.accepted} TCP connections; resets by phase: ${JSON.stringify(hit)}`,
  )
}

/** The connection drops, and the next two handshakes are reset as soon as they reach the proxy (a server that is down). */
async function refusedHandshakes(): Promise<void> {
  const g = await rig()
  await g.publish(2)
  await g.caughtUp()
  const accepted = g.proxy.accepted
  g.proxy.refusing = true
  g.proxy.reset()
  await g.publish(3)
  await vi.waitFor(() => expect(g.proxy.accepted).toBeGreaterThanOrEqual(accepted + 2), { timeout: 10_000, interval: 5 })
  g.proxy.refusing = false
  await vi.waitFor(() => expect(g.rec.client.state).toBe('online'), { timeout: 10_000, interval: 20 })
  await g.publish(2)
  await g.caughtUp()
}

async function blackhole(): Promise<void> {
  const g = await rig()
  await g.publish(3)
  await g.caughtUp()
  const from = g.rec.statuses.length
  const since = () => g.rec.statuses.slice(from)
  const started = performance.now()
  g.proxy.blackhole()
  await g.publish(5) // into the hole: the server's socket takes them, the client never sees them

  // The client notices through its heartbeat (nothing answers its ping)...
  await vi.waitFor(() => expect(since().some((s) => s.to === 'reconnecting')).toBe(true), { timeout: 10_000, interval: 20 })
  const noticed = since().find((s) => s.to === 'reconnecting')!
  console.log(
    `[chaos] network black hole: client went reconnecting (${noticed.reason}) after ${Math.round(performance.now() - started)} ms`,
  )
  expect(['pong timeout', 'connect timeout']).toContain(noticed.reason)
  // ...new connections get no further than the TCP handshake, and time out...
  await vi.waitFor(() => expect(since().filter((s) => s.reason === 'connect timeout').length).toBeGreaterThanOrEqual(2), {
    timeout: 10_000,
    interval: 20,
  })
  // ...and the server drops its half-open side on its own heartbeat.
  await vi.waitFor(() => expect(g.t.server.stats().connections).toBe(0), { timeout: 10_000, interval: 20 })
  expect(since().some((s) => s.to === 'online')).toBe(false)
  await g.publish(5) // while the client is away

  g.proxy.heal()
  await vi.waitFor(() => expect(g.rec.client.state).toBe('online'), { timeout: 10_000, interval: 20 })
  await g.publish(3) // live
  await g.caughtUp()
  // What was held in the hole (the old socket's frames, aborted handshakes) was delivered late and harmed nothing.
  await vi.waitFor(() => expect(g.t.server.stats()).toMatchObject({ users: 1, connections: 1, sockets: 1 }), { timeout: 10_000 })
}

describe('network faults through a TCP proxy', () => {
  it('reset while online, 8 times during a stream: the client reconnects and catches up exactly once', async () => {
    await resets(seedFor('network reset'), false)
  }, 60_000)

  it('resets anywhere (live, mid-upgrade, mid-auth, mid-replay): the client catches up exactly once', async () => {
    await resets(seedFor('network reset anywhere'), true)
  }, 60_000)

  // Regression for the reconnecting-websocket connect-lock defect fixed in 79eece9 (a failed handshake
  // let it schedule a reconnect of its own and strand its lock; the client then never connected again).
  it('two refused handshakes: the client comes back as soon as the network heals', async () => {
    await refusedHandshakes()
  }, 60_000)

  it('black hole: the heartbeat notices, nothing connects until it heals, then the client catches up exactly once', async () => {
    await blackhole()
  }, 60_000)
})
