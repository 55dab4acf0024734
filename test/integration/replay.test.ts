import { mkdtempSync, rmSync } from 'node:fs'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  type Audience,
  type BrokerEvent,
  InProcessBroker,
  type NotificationInput,
  type RetentionRule,
  SqliteStore,
  type Store,
} from '../../src/server/index.js'
import { seedBacklog } from '../helpers/seed.js'
import { authedClient, type RawClient, rawClient, settle, startServer, type TestServer } from '../helpers/server.js'

let t: TestServer | undefined
const clients: RawClient[] = []
const tempDirs: string[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  await t?.dispose()
  t = undefined
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

async function server(options: Parameters<typeof startServer>[0] = {}): Promise<TestServer> {
  t = await startServer(options)
  return t
}

function track(c: RawClient): RawClient {
  clients.push(c)
  return c
}

/** Connects and authenticates, resolving once the first replay round is over. */
async function connect(s: TestServer, userId: string, extra: { since?: number } = {}): Promise<RawClient> {
  return track(await authedClient(s, userId, extra))
}

/** Connects and sends the auth frame without waiting for anything. */
async function connectRaw(s: TestServer, userId: string, extra: { since?: number } = {}): Promise<RawClient> {
  const c = track(await rawClient(s.wsUrl))
  c.send({ type: 'auth', token: await s.token(userId), since: 0, ...extra })
  return c
}

const seqs = (c: RawClient) => c.of('notification').map((f) => f.seq as number)
const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i)

/** Sends an ack and waits until the server has handled it. */
async function ack(c: RawClient, seq: number): Promise<void> {
  c.send({ type: 'ack', seq })
  await settle(c)
}

async function publishMany(s: TestServer, userId: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await s.server.sendToUser(userId, { title: `n${i}`, body: '' })
}

/** Answers every `replayed {more: true}` with a `resume` from its seq, as a client must. */
function autoResume(c: RawClient): void {
  c.ws.on('message', (data) => {
    const f = JSON.parse(data.toString()) as Record<string, unknown>
    if (f.type === 'replayed' && f.more === true) c.send({ type: 'resume', since: f.seq })
  })
}

/** Checks that a client saw every seq from 1 to n exactly once, in order, each with its own id. */
function expectExactlyOnce(c: RawClient, n: number): void {
  expect(seqs(c)).toEqual(range(1, n))
  expect(new Set(c.of('notification').map((f) => f.id)).size).toBe(n)
}

const yieldToIo = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * The embedded store with the latency of a networked one: a read's result
 * arrives a turn of the event loop after the read ran, so publishes can
 * commit in between (the window a shared PostgreSQL would open).
 */
class LaggingStore implements Store {
  readonly #inner: SqliteStore
  #readsInFlight = 0
  /** Publishes that committed while some read's (now stale) result was on its way. */
  overtaken = 0

  constructor() {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-lag-'))
    tempDirs.push(dir)
    this.#inner = new SqliteStore(join(dir, 'belfry.db'))
  }

  async #lag<T>(read: Promise<T>): Promise<T> {
    this.#readsInFlight += 1
    try {
      const result = await read
      await yieldToIo()
      return result
    } finally {
      this.#readsInFlight -= 1
    }
  }

  publish(audience: Audience, input: NotificationInput) {
    if (this.#readsInFlight > 0) this.overtaken += 1
    return this.#inner.publish(audience, input)
  }
  touchUser(userId: string) {
    return this.#lag(this.#inner.touchUser(userId))
  }
  after(userId: string, after: number, limit: number) {
    return this.#lag(this.#inner.after(userId, after, limit))
  }
  history(userId: string, before: number | undefined, limit: number) {
    return this.#inner.history(userId, before, limit)
  }
  ack(userId: string, seq: number) {
    return this.#inner.ack(userId, seq)
  }
  markRead(userId: string, ids: readonly string[] | 'all') {
    return this.#inner.markRead(userId, ids)
  }
  subscribe(userId: string, topics: readonly string[], max: number) {
    return this.#inner.subscribe(userId, topics, max)
  }
  unsubscribe(userId: string, topics: readonly string[]) {
    return this.#inner.unsubscribe(userId, topics)
  }
  topics(userId: string) {
    return this.#inner.topics(userId)
  }
  fanOut() {
    return this.#inner.fanOut()
  }
  latestSeqs(userIds: readonly string[]) {
    return this.#inner.latestSeqs(userIds)
  }
  user(userId: string) {
    return this.#inner.user(userId)
  }
  prune(rule: RetentionRule, after: number) {
    return this.#inner.prune(rule, after)
  }
  check() {
    return this.#inner.check()
  }
  close() {
    return this.#inner.close()
  }
}

describe('replay with a cursor (since)', () => {
  it('replays everything after since, in order, then goes live', async () => {
    const s = await server()
    await publishMany(s, 'alice', 5)
    const c = await connect(s, 'alice', { since: 2 })
    expect(c.frames.map((f) => f.type)).toEqual(['auth_success', 'notification', 'notification', 'notification', 'replayed'])
    expect(c.frames[0]).toMatchObject({ userId: 'alice', seq: 5, unreadCount: 5 })
    expect(seqs(c)).toEqual([3, 4, 5])
    expect(c.of('notification').map((f) => f.title)).toEqual(['n2', 'n3', 'n4'])
    expect(c.frames.at(-1)).toEqual({ type: 'replayed', more: false, seq: 5 })

    await s.server.sendToUser('alice', { title: 'live', body: '' })
    const live = await c.next((f) => f.type === 'notification' && f.seq === 6)
    expect(live).toMatchObject({ title: 'live', read: false })
    await settle(c)
    expect(seqs(c)).toEqual([3, 4, 5, 6])
  })

  it('writes the auth answer and the replay round to the socket at once, not a write per frame', async () => {
    const s = await server()
    await publishMany(s, 'alice', 5)
    // Every write the server makes to a socket it accepts, by socket, once the upgrade is answered.
    const writes: number[] = []
    s.server.httpServer!.on('connection', (socket: Socket) => {
      const i = writes.push(0) - 1
      socket.once('data', () => {
        for (const method of ['_write', '_writev'] as const) {
          const inner = socket[method] as (...args: unknown[]) => void
          socket[method] = function (this: Socket, ...args: unknown[]) {
            writes[i]!++
            return inner.apply(this, args)
          } as never
        }
      })
    })
    const c = await connect(s, 'alice', { since: 2 })
    expect(c.frames.map((f) => f.type)).toEqual(['auth_success', 'notification', 'notification', 'notification', 'replayed'])
    // The 101 answer is one write (made before the counting starts or counted here); the five frames one more.
    expect(writes.at(-1)).toBeLessThanOrEqual(2)
  })

  it('takes since 0 as no cursor: replays what comes after the acknowledged cursor', async () => {
    const s = await server()
    await publishMany(s, 'alice', 5)
    await ack(await connect(s, 'alice'), 3)
    const c = await connect(s, 'alice', { since: 0 })
    expect(seqs(c)).toEqual([4, 5])
  })

  it('sends nothing but replayed when since is the latest seq', async () => {
    const s = await server()
    await publishMany(s, 'alice', 2)
    const c = await connect(s, 'alice', { since: 2 })
    expect(c.frames.map((f) => f.type)).toEqual(['auth_success', 'replayed'])
    expect(c.frames[1]).toEqual({ type: 'replayed', more: false, seq: 2 })
  })

  it('clamps a cursor beyond the latest seq on a fresh user, and still delivers later notifications', async () => {
    const s = await server()
    const c = await connect(s, 'fresh', { since: 9999 })
    expect(c.frames[0]).toMatchObject({ type: 'auth_success', seq: 0, unreadCount: 0 })
    expect(c.frames[1]).toEqual({ type: 'replayed', more: false, seq: 0 })
    await s.server.sendToUser('fresh', { title: 'first', body: '' })
    await s.server.sendToUser('fresh', { title: 'second', body: '' })
    await c.next((f) => f.type === 'notification' && f.seq === 2)
    expect(seqs(c)).toEqual([1, 2])
  })

  it('clamps a cursor beyond the latest seq of a user with history', async () => {
    const s = await server()
    await publishMany(s, 'alice', 3)
    const c = await connect(s, 'alice', { since: 9999 })
    expect(seqs(c)).toEqual([])
    expect(c.frames.at(-1)).toEqual({ type: 'replayed', more: false, seq: 3 })
    await s.server.sendToUser('alice', { title: 'next', body: '' })
    const n = await c.next((f) => f.type === 'notification')
    expect(n).toMatchObject({ seq: 4, title: 'next' })
  })
})

describe('replay without a cursor (the acknowledged cursor)', () => {
  it('delivers what was queued while offline, then only what is after the ack', async () => {
    const s = await server()
    await s.server.sendToUser('bob', { title: 'one', body: '' })
    await s.server.sendToUser('bob', { title: 'two', body: '' })
    await s.server.sendToUser('bob', { title: 'three', body: '' })

    const first = await connect(s, 'bob')
    expect(seqs(first)).toEqual([1, 2, 3])
    expect(first.of('notification').map((f) => f.title)).toEqual(['one', 'two', 'three'])
    await ack(first, 2)
    first.close()

    const second = await connect(s, 'bob')
    expect(seqs(second)).toEqual([3])
    expect(second.frames.at(-1)).toEqual({ type: 'replayed', more: false, seq: 3 })
  })

  it('never moves the ack back, and never past the latest seq', async () => {
    const s = await server()
    await publishMany(s, 'bob', 3)
    const a = await connect(s, 'bob')
    await ack(a, 2)
    await ack(a, 1) // backwards: ignored
    a.close()

    const b = await connect(s, 'bob')
    expect(seqs(b)).toEqual([3])
    await ack(b, 9999) // beyond the latest: clamped to 3
    b.close()

    await s.server.sendToUser('bob', { title: 'after the big ack', body: '' })
    const c = await connect(s, 'bob')
    expect(c.frames[0]).toMatchObject({ type: 'auth_success', seq: 4 })
    // Had the ack been stored as 9999, seq 4 would count as delivered and never arrive.
    expect(seqs(c)).toEqual([4])
    expect(c.of('notification')[0]).toMatchObject({ title: 'after the big ack' })
  })

  it('gives a user with nothing queued an empty replay', async () => {
    const s = await server()
    const c = await connect(s, 'nobody')
    expect(c.frames.map((f) => f.type)).toEqual(['auth_success', 'replayed'])
    expect(c.frames[1]).toEqual({ type: 'replayed', more: false, seq: 0 })
  })
})

describe('replay paging', () => {
  it('sends one bounded round at a time, holds live ones back until the client has paged through', async () => {
    const s = await server({ limits: { replayBatch: 10 } })
    await publishMany(s, 'carol', 35)
    const c = await connectRaw(s, 'carol')
    const firstRound = await c.next((f) => f.type === 'replayed')
    expect(firstRound).toEqual({ type: 'replayed', more: true, seq: 10 })
    expect(seqs(c)).toEqual(range(1, 10))

    // Published while the client has not paged: stored, but not sent yet.
    await s.server.sendToUser('carol', { title: 'live 36', body: '' })
    await s.server.sendToUser('carol', { title: 'live 37', body: '' })
    await settle(c)
    expect(seqs(c)).toEqual(range(1, 10))

    const rounds: Record<string, unknown>[] = []
    let since = 10
    for (let page = 1; page <= 10; page++) {
      const from = c.frames.length
      const requestId = `page-${page}`
      c.send({ type: 'resume', since, requestId })
      const round = await c.next((f) => f.type === 'replayed' && f.requestId === requestId, from)
      rounds.push(round)
      since = round.seq as number
      if (round.more === false) break
    }
    expect(rounds).toEqual([
      { type: 'replayed', more: true, seq: 20, requestId: 'page-1' },
      { type: 'replayed', more: true, seq: 30, requestId: 'page-2' },
      { type: 'replayed', more: false, seq: 37, requestId: 'page-3' },
    ])
    expectExactlyOnce(c, 37)
    expect(
      c
        .of('notification')
        .slice(-2)
        .map((f) => f.title),
    ).toEqual(['live 36', 'live 37'])

    // Live now.
    await s.server.sendToUser('carol', { title: 'live 38', body: '' })
    await c.next((f) => f.type === 'notification' && f.seq === 38)
    await settle(c)
    expectExactlyOnce(c, 38)
  })

  it('pages the same way for a client with no cursor', async () => {
    const s = await server({ limits: { replayBatch: 4 } })
    await publishMany(s, 'carol', 9)
    const c = await connectRaw(s, 'carol', { since: 0 })
    autoResume(c)
    await c.next((f) => f.type === 'replayed' && f.more === false)
    expect(c.of('replayed').map((f) => [f.more, f.seq])).toEqual([
      [true, 4],
      [true, 8],
      [false, 9],
    ])
    expectExactlyOnce(c, 9)
  })
})

describe('replay robustness', () => {
  // A resume's `since` is clamped to the latest seq, as at auth (src/server/connection.ts, the
  // `resume` case of #handle): taken unclamped, deliver() would silently drop every live
  // notification with seq <= that cursor, and replayed.seq would echo the bogus cursor back.
  it('refuses a resume that continues no announced replay, and live delivery goes on', async () => {
    const s = await server()
    const c = await connect(s, 'jay')
    await s.server.sendToUser('jay', { title: 'first', body: '' })
    await c.next((f) => f.type === 'notification' && f.seq === 1)
    for (const since of [0, 1, 9999]) c.send({ type: 'resume', since, requestId: `r${since}` })
    for (const since of [0, 1, 9999]) {
      expect(await c.next((f) => f.requestId === `r${since}`)).toMatchObject({ type: 'error', code: 'bad_frame' })
    }
    await s.server.sendToUser('jay', { title: 'second', body: '' })
    await settle(c)
    expect(seqs(c)).toEqual([1, 2])
    expect(c.of('replayed')).toHaveLength(1) // the one of auth
  })

  it('takes a resume only from the seq the round announced, once', async () => {
    const s = await server({ limits: { replayBatch: 2 } })
    await publishMany(s, 'kim', 5)
    const c = await connectRaw(s, 'kim')
    const first = await c.next((f) => f.type === 'replayed')
    expect(first).toMatchObject({ more: true, seq: 2 })
    c.send({ type: 'resume', since: 0, requestId: 'rewind' })
    expect(await c.next((f) => f.requestId === 'rewind')).toMatchObject({ type: 'error', code: 'bad_frame' })
    c.send({ type: 'resume', since: 2, requestId: 'next' })
    expect(await c.next((f) => f.requestId === 'next')).toMatchObject({ type: 'replayed', more: true, seq: 4 })
    c.send({ type: 'resume', since: 2, requestId: 'again' })
    expect(await c.next((f) => f.requestId === 'again')).toMatchObject({ type: 'error', code: 'bad_frame' })
    expect(seqs(c)).toEqual([1, 2, 3, 4])
  })

  // Regression: a round used to send up to replayBatch frames in one synchronous loop, and
  // send() closes with 4009 once ws.bufferedAmount passes maxBufferedBytes. With 500 large
  // notifications (the publish limits allow ~25 KB each) the server's own replay burst cut off a
  // client that reads promptly. A round is now bounded in bytes too.
  it('completes a default-size replay of large notifications without a slow-consumer close', async () => {
    const s = await server()
    const body = 'x'.repeat(8192)
    const data = { blob: 'y'.repeat(16_000) }
    for (let i = 1; i <= 500; i++) await s.server.sendToUser('ivy', { title: `n${i}`, body, data })
    const c = await connectRaw(s, 'ivy')
    autoResume(c)
    const outcome = await Promise.race([
      c.next((f) => f.type === 'replayed' && f.more === false).then(() => 'caught up'),
      c.closed.then(({ code, reason }) => `closed ${code} (${reason}) after ${seqs(c).length} notifications`),
    ])
    expect(outcome).toBe('caught up')
    expectExactlyOnce(c, 500)
  })
})

/** A SQLite store in a temporary directory whose `method` throws on its `call`-th call, and only then. */
function failingOnce(method: 'touchUser' | 'history' | 'after', call = 1): SqliteStore {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-failing-'))
  tempDirs.push(dir)
  const store = new SqliteStore(join(dir, 'belfry.db'))
  const real = store[method].bind(store) as (...args: unknown[]) => Promise<unknown>
  let calls = 0
  ;(store as unknown as Record<string, unknown>)[method] = async (...args: unknown[]) => {
    if (++calls === call) throw new Error('disk I/O error')
    return real(...args)
  }
  return store
}

describe('a store that fails during auth', () => {
  it('closes with 1011 instead of leaving the connection short of live; the next connection works', async () => {
    const store = failingOnce('touchUser')
    const s = await server({ store })
    const c = await connectRaw(s, 'cy')
    expect(await c.closed).toMatchObject({ code: 1011 })
    expect(c.of('error')).toEqual([{ type: 'error', code: 'internal', message: 'internal error' }])
    await connect(s, 'cy')
  })
})

describe('a store that fails in the middle of a replay', () => {
  it.each([
    ["belfry's client, which asks for each round", false],
    ["the article's client, whose rounds follow on their own", true],
  ])('closes with 1011 after the rounds already sent (%s); the next connection replays the rest', async (_, article) => {
    // The first round's read succeeds, the second's fails.
    const store = failingOnce('after', 2)
    const s = await server({ store, limits: { replayBatch: 2 } })
    await publishMany(s, 'hal', 5)
    const c = article ? track(await rawClient(`ws://127.0.0.1:${s.port}/`)) : await connectRaw(s, 'hal')
    if (article) c.send({ type: 'auth', userId: 'hal', token: await s.token('hal') })
    else autoResume(c)
    expect(await c.next((f) => f.type === 'error')).toEqual({ type: 'error', code: 'internal', message: 'internal error' })
    // A connection left open (never live) would answer this ping.
    c.send({ type: 'ping', requestId: 'still-there' })
    const outcome = await Promise.race([c.closed.then(({ code }) => code), c.next((f) => f.type === 'pong').then(() => 'answered a ping')])
    expect(outcome).toBe(1011)
    expect(seqs(c)).toEqual([1, 2])
    // Without a cursor, from the acknowledged one: the client answered the 1011, so it had 1 and 2.
    const again = await connectRaw(s, 'hal')
    autoResume(again)
    await again.next((f) => f.type === 'replayed' && f.more === false)
    expect(seqs(again)).toEqual([3, 4, 5])
  })
})

describe("the article's client: no since, no resume, no acks", () => {
  /** The article's auth frame, exactly: no `since`. */
  async function articleClient(s: TestServer, userId: string): Promise<RawClient> {
    const c = track(await rawClient(`ws://127.0.0.1:${s.port}/`))
    c.send({ type: 'auth', userId, token: await s.token(userId) })
    await c.next((f) => f.type === 'auth_success')
    return c
  }

  it('gets a queue longer than a replay round without asking for more, then live notifications', async () => {
    const s = await server({ limits: { replayBatch: 5 } })
    await publishMany(s, 'ann', 12)
    const c = await articleClient(s, 'ann')
    await c.next((f) => f.type === 'replayed' && f.more === false)
    expect(c.frames.filter((f) => f.type === 'replayed').map((f) => f.more)).toEqual([true, true, false])
    await s.server.sendToUser('ann', { title: 'live', body: '' })
    await c.next((f) => f.type === 'notification' && f.title === 'live')
    expectExactlyOnce(c, 13)
    expect(c.frames.filter((f) => f.type === 'resume')).toEqual([])
  })

  it('on reconnect gets what was queued while it was away, not everything again (the server acks what it sent)', async () => {
    const s = await server()
    await publishMany(s, 'bea', 3)
    const first = await articleClient(s, 'bea')
    await first.next((f) => f.type === 'replayed' && f.more === false)
    await s.server.sendToUser('bea', { title: 'live', body: '' })
    await first.next((f) => f.type === 'notification' && f.seq === 4)
    // The server acks for it (within a second).
    const db = new Database(s.database, { readonly: true })
    const acked = () => (db.prepare('SELECT acked_seq FROM users WHERE id = ?').get('bea') as { acked_seq: number }).acked_seq
    await vi.waitFor(() => expect(acked()).toBe(4), { timeout: 5000 })
    db.close()
    first.close()
    await vi.waitFor(() => expect(s.server.stats().connections).toBe(0))
    await s.server.sendToUser('bea', { title: 'while away', body: '' })
    const second = await articleClient(s, 'bea')
    await second.next((f) => f.type === 'replayed' && f.more === false)
    expect(second.of('notification').map((f) => f.title)).toEqual(['while away'])
  })
})

describe('acks for the article’s client', () => {
  it('acks nothing the client has not read: a client that stalls and drops gets it all on reconnect', async () => {
    const s = await server()
    const first = track(await rawClient(`ws://127.0.0.1:${s.port}/`))
    first.send({ type: 'auth', userId: 'dov', token: await s.token('dov') })
    await first.next((f) => f.type === 'replayed' && f.more === false)
    // A client that stopped reading (a stalled process, or a half-open connection): no pong.
    ;(first.ws as unknown as { _socket: { pause(): void } })._socket.pause()
    await publishMany(s, 'dov', 5)
    await new Promise((resolve) => setTimeout(resolve, 1500))
    first.ws.terminate()
    await vi.waitFor(() => expect(s.server.stats().connections).toBe(0))
    const second = track(await rawClient(`ws://127.0.0.1:${s.port}/`))
    second.send({ type: 'auth', userId: 'dov', token: await s.token('dov') })
    await second.next((f) => f.type === 'replayed' && f.more === false)
    expect(seqs(second)).toEqual([1, 2, 3, 4, 5])
  })
})

describe('acks that ride on the heartbeat', () => {
  /** The user's acknowledged cursor as the database holds it. */
  function ackedOf(s: TestServer, userId: string): number {
    const db = new Database(s.database, { readonly: true })
    try {
      return (db.prepare('SELECT acked_seq AS acked FROM users WHERE id = ?').get(userId) as { acked: number } | undefined)?.acked ?? 0
    } finally {
      db.close()
    }
  }

  it('a heartbeat ping carries the last seq sent and its pong acks it; later pings carry nothing new', async () => {
    const s = await server({ limits: { heartbeatMs: 100 } })
    const c = await connect(s, 'hugo')
    expect(c.of('auth_success')[0]).toMatchObject({ pingAcks: true })
    const pings: string[] = []
    c.ws.on('ping', (payload) => pings.push(payload.toString()))
    await publishMany(s, 'hugo', 3)
    await c.next((f) => f.type === 'notification' && f.seq === 3)
    // No ack frame from the client: its WebSocket's pongs ack.
    await vi.waitFor(() => expect(ackedOf(s, 'hugo')).toBe(3), { timeout: 5000 })
    expect(pings).toContain('3')
    const after = pings.length
    await vi.waitFor(() => expect(pings.length).toBeGreaterThanOrEqual(after + 2), { timeout: 5000 })
    expect(pings.slice(after).filter((p) => p !== '')).toEqual([])
  })

  it('the pings of a connection sent nothing since it connected carry no seq: no store write per heartbeat', async () => {
    const s = await server({ limits: { heartbeatMs: 100 } })
    await publishMany(s, 'kai', 3)
    const resumed = await connect(s, 'kai', { since: 3 })
    const fresh = await connect(s, 'kai') // starts after the acknowledged cursor (3, from the one above)
    expect(seqs(fresh)).toEqual([])
    const pings: string[] = []
    for (const c of [resumed, fresh]) c.ws.on('ping', (payload) => pings.push(payload.toString()))
    await vi.waitFor(() => expect(pings.length).toBeGreaterThanOrEqual(4), { timeout: 5000 })
    expect(pings.filter((p) => p !== '')).toEqual([])
  })

  it('a pong that does not answer the latest ping acks nothing, and the next ping asks again', async () => {
    const s = await server({ limits: { heartbeatMs: 100 } })
    const c = track(await rawClient(s.wsUrl, { autoPong: false }))
    c.send({ type: 'auth', token: await s.token('ida'), since: 0 })
    await c.next((f) => f.type === 'replayed' && f.more === false)
    await publishMany(s, 'ida', 2)
    await c.next((f) => f.type === 'notification' && f.seq === 2)
    const pings: string[] = []
    c.ws.on('ping', (payload) => {
      pings.push(payload.toString())
      c.ws.pong(pings.length < 4 ? '1' : payload) // three forged answers (alive, but acking nothing), then a true one
    })
    await vi.waitFor(() => expect(pings.length).toBeGreaterThanOrEqual(3), { timeout: 5000 })
    expect(ackedOf(s, 'ida')).toBe(0)
    expect(pings.slice(0, 3)).toEqual(['2', '2', '2'])
    await vi.waitFor(() => expect(ackedOf(s, 'ida')).toBe(2), { timeout: 5000 })
    expect(c.ws.readyState).toBe(c.ws.OPEN)
  })

  it('the cursor a client connects with counts as an ack; one beyond the latest seq (another database) does not', async () => {
    const s = await server()
    await publishMany(s, 'jo', 5)
    await connect(s, 'jo', { since: 4 })
    await vi.waitFor(() => expect(ackedOf(s, 'jo')).toBe(4))
    // A new device (no cursor) starts after it.
    const fresh = await connect(s, 'jo')
    expect(seqs(fresh)).toEqual([5])
    await connect(s, 'jo', { since: 99 })
    await publishMany(s, 'jo', 1)
    await settle(fresh)
    await new Promise((resolve) => setTimeout(resolve, 200)) // past the 50 ms in which acks gather
    expect(ackedOf(s, 'jo')).toBe(4)
  })
})

describe('a broker that fails after the commit', () => {
  it('still answers the publish (it is durable), and a recipient connected to this process gets it at once', async () => {
    let failures = 1
    class FlakyBroker extends InProcessBroker {
      override publish(events: readonly BrokerEvent[]): void {
        if (failures-- > 0) throw new Error('broker unreachable')
        super.publish(events)
      }
    }
    const s = await server({ broker: new FlakyBroker() })
    const c = await connect(s, 'fay')
    const first = await s.server.sendToUser('fay', { title: 'one', body: '' })
    expect(first).toMatchObject({ recipients: 1 })
    await c.next((f) => f.type === 'notification' && f.seq === 1)
    await s.server.sendToUser('fay', { title: 'two', body: '' })
    await c.next((f) => f.type === 'notification' && f.seq === 2)
    await settle(c)
    expect(c.of('notification').map((f) => [f.seq, f.title])).toEqual([
      [1, 'one'],
      [2, 'two'],
    ])
  })
})

describe('a broker that delivers out of order', () => {
  /** Holds back the events of the publish after `holdNext` is set, and hands them on after the next publish's. */
  class ReorderingBroker extends InProcessBroker {
    holdNext = false
    #held: readonly BrokerEvent[] | undefined
    override publish(events: readonly BrokerEvent[]): void {
      if (this.holdNext) {
        this.holdNext = false
        this.#held = events
        return
      }
      super.publish(events)
      const held = this.#held
      this.#held = undefined
      if (held) super.publish(held)
    }
  }

  it('a live connection that sees a gap catches up from the store: every seq once, in order', async () => {
    const broker = new ReorderingBroker()
    const s = await server({ broker })
    const c = await connect(s, 'gus')
    await s.server.sendToUser('gus', { title: 'one', body: '' })
    await c.next((f) => f.type === 'notification' && f.seq === 1)
    broker.holdNext = true
    await s.server.sendToUser('gus', { title: 'two', body: '' }) // held back
    await s.server.sendToUser('gus', { title: 'three', body: '' }) // arrives first (after 1: a gap), then two
    await s.server.sendToUser('gus', { title: 'four', body: '' })
    await c.next((f) => f.type === 'notification' && f.seq === 4)
    await settle(c)
    expectExactlyOnce(c, 4)
    expect(c.of('notification').map((f) => f.title)).toEqual(['one', 'two', 'three', 'four'])
  })
})

describe('pongs that ack nothing', () => {
  it('an unsolicited pong, however often and whatever it carries, acks nothing for the article’s client', async () => {
    const s = await server()
    await publishMany(s, 'gil', 3)
    const c = track(await rawClient(`ws://127.0.0.1:${s.port}/`))
    c.send({ type: 'auth', userId: 'gil', token: await s.token('gil') })
    await c.next((f) => f.type === 'replayed' && f.more === false)
    // Sent before the server's own ack ping (a second after the replay): none of these match it.
    for (let i = 0; i < 200; i++) c.ws.pong(String(i % 2 === 0 ? 3 : 999))
    await settle(c)
    const db = new Database(s.database, { readonly: true })
    expect(db.prepare('SELECT acked_seq AS acked FROM users WHERE id = ?').get('gil')).toEqual({ acked: 0 })
    db.close()
  })
})

describe('a request that fails while a connection pages through its replay', () => {
  it('is answered with an error; the connection stays and pages on', async () => {
    const store = failingOnce('history')
    const s = await server({ store, limits: { replayBatch: 2 } })
    await publishMany(s, 'eve', 5)
    const c = await connectRaw(s, 'eve')
    const first = await c.next((f) => f.type === 'replayed')
    expect(first).toMatchObject({ more: true })
    c.send({ type: 'history', requestId: 'h' })
    expect(await c.next((f) => f.type === 'error')).toEqual({ type: 'error', code: 'internal', message: 'internal error', requestId: 'h' })
    autoResume(c)
    c.send({ type: 'resume', since: first.seq })
    await c.next((f) => f.type === 'replayed' && f.more === false)
    expectExactlyOnce(c, 5)
    expect(c.ws.readyState).toBe(c.ws.OPEN)
  })
})

describe('bounded in bytes, not characters', () => {
  // '€' is 3 bytes in UTF-8 and 1 character in JavaScript: a bound counted in characters
  // lets a round or a history page grow to 3× what it should.
  const big = { title: '€'.repeat(256), body: '€'.repeat(8192), data: { blob: '€'.repeat(5000) } }

  it('a replay round of multi-byte notifications stays within half the send buffer bound', async () => {
    const s = await server()
    for (let i = 0; i < 60; i++) await s.server.sendToUser('kai', big)
    const c = await connectRaw(s, 'kai')
    const round = await c.next((f) => f.type === 'replayed')
    expect(round).toMatchObject({ more: true })
    const bytes = c.of('notification').reduce((sum, f) => sum + Buffer.byteLength(JSON.stringify(f)), 0)
    expect(bytes).toBeLessThanOrEqual((1024 * 1024) / 2 + Buffer.byteLength(JSON.stringify(c.of('notification')[0])))
    autoResume(c)
    c.send({ type: 'resume', since: round.seq })
    await c.next((f) => f.type === 'replayed' && f.more === false)
    expectExactlyOnce(c, 60)
  })

  it('a history page of large notifications is cut short with `next`, and paging reaches every one', async () => {
    const s = await server()
    for (let i = 0; i < 60; i++) await s.server.sendToUser('lee', big)
    const c = await connect(s, 'lee', { since: 60 })
    const seen: number[] = []
    let before: number | undefined
    for (let page = 0; page < 60; page++) {
      const requestId = `h${page}`
      c.send({ type: 'history', limit: 100, requestId, ...(before === undefined ? {} : { before }) })
      const reply = await c.next((f) => f.type === 'history' && f.requestId === requestId)
      const items = reply.items as { seq: number }[]
      expect(Buffer.byteLength(JSON.stringify(reply))).toBeLessThan((1024 * 1024) / 2 + 60_000)
      seen.push(...items.map((n) => n.seq))
      if (reply.next === undefined) break
      before = reply.next as number
    }
    expect(seen).toEqual(range(1, 60).reverse())
    expect(c.of('notification')).toEqual([])
  })
})

describe('the boundary between replay and live', () => {
  const N = 200

  it('delivers a burst published right before auth exactly once, in order', async () => {
    const s = await server()
    const c = track(await rawClient(s.wsUrl))
    const token = await s.token('dave')
    const burst = Promise.all(range(1, N).map((i) => s.server.sendToUser('dave', { title: `n${i}`, body: '' })))
    c.send({ type: 'auth', token, since: 0 })
    await burst
    await c.next((f) => f.type === 'notification' && f.seq === N)
    await settle(c)
    expectExactlyOnce(c, N)
    expect(c.of('notification').map((f) => f.title)).toEqual(range(1, N).map((i) => `n${i}`))
  })

  it.each([
    ['one round', 500, false],
    ['paged rounds', 16, false],
    ['one round, lagging store', 500, true],
    ['paged rounds, lagging store', 16, true],
  ])('delivers a concurrent stream exactly once, in order, with no gap (%s)', async (_, replayBatch, lagging) => {
    const store = lagging ? new LaggingStore() : undefined
    const s = await server({ limits: { replayBatch }, ...(store ? { store } : {}) })
    const user = 'erin'
    const token = await s.token(user)
    const late = track(await rawClient(s.wsUrl))
    const early = track(await rawClient(s.wsUrl))
    autoResume(early)
    autoResume(late)
    let published = 0
    const joins = [
      { at: 20, client: early },
      { at: 110, client: late },
    ]
    /** How many had been published when each client was seen authenticated. */
    const authedAt = new Map<RawClient, number>()
    // Keep publishing for a while after both have joined, however slow the machine.
    const done = () => published >= N && [early, late].every((c) => published >= (authedAt.get(c) ?? Number.POSITIVE_INFINITY) + 40)
    // Publishes interleave with everything the server does: a few at once, then a turn of the event loop.
    while (!done()) {
      const batch = 1 + (published % 3)
      const pending = range(1, batch).map(() => s.server.sendToUser(user, { title: `n${++published}`, body: '' }))
      await Promise.all(pending)
      while (joins[0] && published >= joins[0].at) joins.shift()!.client.send({ type: 'auth', token, since: 0 })
      for (const c of [early, late]) if (!authedAt.has(c) && c.of('auth_success').length > 0) authedAt.set(c, published)
      await yieldToIo()
    }
    const total = published
    for (const c of [early, late]) {
      await c.next((f) => f.type === 'notification' && f.seq === total)
      await settle(c)
      expectExactlyOnce(c, total)
      // Each joined while the stream was running.
      const joined = c.of('auth_success')[0]!.seq as number
      expect(joined).toBeGreaterThan(0)
      expect(joined).toBeLessThan(total)
    }
    // With the lagging store, the race this test is about really happened.
    if (store) expect(store.overtaken).toBeGreaterThan(0)
  })

  it('resumes from a mid-stream cursor while publishes continue', async () => {
    const s = await server({ limits: { replayBatch: 8 } })
    await publishMany(s, 'fay', 50)
    const token = await s.token('fay')
    const c = track(await rawClient(s.wsUrl))
    autoResume(c)
    const stream = (async () => {
      for (let i = 51; i <= 150; i++) {
        await s.server.sendToUser('fay', { title: `n${i}`, body: '' })
        if (i === 60) c.send({ type: 'auth', token, since: 25 })
        await yieldToIo()
      }
    })()
    await stream
    await c.next((f) => f.type === 'notification' && f.seq === 150)
    await settle(c)
    expect(seqs(c)).toEqual(range(26, 150))
  })
})

describe('several connections of one user', () => {
  it('gives each tab each live notification once', async () => {
    const s = await server()
    const tabs = [await connect(s, 'gus'), await connect(s, 'gus'), await connect(s, 'gus')]
    const bystander = await connect(s, 'hal')
    for (let i = 1; i <= 5; i++) await s.server.sendToUser('gus', { title: `n${i}`, body: '' })
    for (const tab of tabs) {
      await vi.waitFor(() => expect(seqs(tab)).toHaveLength(5))
      await settle(tab)
      expectExactlyOnce(tab, 5)
    }
    // Every tab saw the same notifications.
    const ids = tabs.map((tab) => tab.of('notification').map((f) => f.id))
    expect(ids[1]).toEqual(ids[0])
    expect(ids[2]).toEqual(ids[0])
    await settle(bystander)
    expect(seqs(bystander)).toEqual([])
  })

  it('lets a tab that joins later replay while the others stay live', async () => {
    const s = await server()
    const first = await connect(s, 'gus')
    await publishMany(s, 'gus', 3)
    await first.next((f) => f.type === 'notification' && f.seq === 3)
    const second = await connect(s, 'gus', { since: 1 })
    await publishMany(s, 'gus', 2)
    for (const tab of [first, second]) {
      await tab.next((f) => f.type === 'notification' && f.seq === 5)
      await settle(tab)
    }
    expectExactlyOnce(first, 5)
    expect(seqs(second)).toEqual([2, 3, 4, 5])
  })
})

// Regression: each resume was paid from the frame budget (20 a second, 60 at once), and belfry's client sends one
// at once after each round of 500: past some 33,000 entries the server closed it with 4029.
describe('a long replay, with the default limits', () => {
  it('a client that answers each replayed {more: true} with resume catches up on 40,000 entries without being closed', async () => {
    const t = await server()
    const backlog = 40_000
    seedBacklog(t, 'bea', backlog)
    const c = track(await rawClient(t.wsUrl))
    let notifications = 0
    const caughtUp = new Promise<void>((resolve) => {
      c.ws.on('message', (data) => {
        const f = JSON.parse(data.toString()) as Record<string, unknown>
        if (f.type === 'notification') notifications++
        // As belfry's client does (notification-client.ts): the next round at once.
        if (f.type === 'replayed' && f.more === true) c.send({ type: 'resume', since: f.seq })
        if (f.type === 'replayed' && f.more === false) resolve()
      })
    })
    c.send({ type: 'auth', token: await t.token('bea'), since: 0 })
    const outcome = await Promise.race([
      caughtUp.then(() => 'caught up'),
      c.closed.then(({ code, reason }) => `closed ${code} (${reason})`),
    ])
    expect(outcome, `after ${notifications} notifications`).toBe('caught up')
    expect(notifications).toBe(backlog)
    c.close()
  })
})
