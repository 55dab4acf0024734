/**
 * `GET /metrics`: off unless enabled, behind its bearer token, a registry of
 * its own per server, exact counts for a scripted scenario, and a number of
 * series that does not grow with users.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest'
import { CloseCode } from '../../src/protocol/index.js'
import { PostgresStore, RedisBroker, SqliteStore } from '../../src/server/index.js'
import {
  API_KEY,
  authedClient,
  httpPublish,
  type RawClient,
  rawClient,
  startServer,
  type TestServer,
  useServer,
} from '../helpers/server.js'
import { type PgInstance, type RedisInstance, startPostgres, startRedis } from '../helpers/services.js'

const start = useServer()

/** The series of a scrape (`name{labels}` → value), comments left out. */
type Series = Map<string, number>

function parse(text: string): Series {
  const series: Series = new Map()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    series.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return series
}

async function scrape(t: TestServer, token = API_KEY): Promise<{ text: string; series: Series }> {
  const res = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })
  expect(res.status).toBe(200)
  const text = await res.text()
  return { text, series: parse(text) }
}

/** What changed in the counters (`…_total`, and histograms' `…_count`) from `before` to `after`, without the zeros. */
function deltas(before: Series, after: Series): Record<string, number> {
  const changed: Record<string, number> = {}
  for (const [key, value] of after) {
    const name = key.split('{')[0]!
    if (!name.endsWith('_total') && !name.endsWith('_count')) continue
    const delta = value - (before.get(key) ?? 0)
    if (delta !== 0) changed[key] = delta
  }
  return changed
}

describe('/metrics', () => {
  it('is off (404) unless enabled; then answers only its bearer token (401 otherwise)', async () => {
    const off = await start()
    expect((await fetch(`${off.url}/metrics`, { headers: { authorization: `Bearer ${API_KEY}` } })).status).toBe(404)
    await off.dispose()

    const onKey = await start({ metrics: true })
    const get = (headers: Record<string, string> = {}, method = 'GET') => fetch(`${onKey.url}/metrics`, { method, headers })
    const missing = await get()
    expect(missing.status).toBe(401)
    expect(missing.headers.get('www-authenticate')).toBe('Bearer')
    expect(await missing.json()).toMatchObject({ error: 'unauthorized' })
    expect((await get({ authorization: 'Bearer not-the-key' })).status).toBe(401)
    expect((await get({ authorization: API_KEY })).status).toBe(401)
    const ok = await get({ authorization: `Bearer ${API_KEY}` })
    expect(ok.status).toBe(200)
    expect(ok.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    expect(ok.headers.get('cache-control')).toBe('no-store')
    expect(await ok.text()).toMatch(/^# HELP belfry_/)
    expect((await get({ authorization: `Bearer ${API_KEY}` }, 'POST')).status).toBe(405)
    await onKey.dispose()

    const onToken = await start({ metrics: { token: 'metrics-token-1' } })
    const withToken = (token: string) => fetch(`${onToken.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })
    expect((await withToken(API_KEY)).status, 'the API key is not the metrics token').toBe(401)
    expect((await withToken('metrics-token-1')).status).toBe(200)
  })

  it('serves only belfry_ metrics, from a registry of its own: two servers in one process count apart', async () => {
    const a = await start({ metrics: true })
    const { series: first } = await scrape(a)
    for (const key of first.keys()) expect(key).toMatch(/^belfry_/)
    await authedClient(a, 'ann')
    const { series: after } = await scrape(a)
    expect(after.get('belfry_connects_total')).toBe(1)
    expect(after.get('belfry_open_connections')).toBe(1)

    // Another server in the same process starts from zero and does not move the first's counters.
    const b = await startServer({ metrics: true })
    try {
      await authedClient(b, 'bob')
      await authedClient(b, 'bob')
      expect((await scrape(b)).series.get('belfry_connects_total')).toBe(2)
      expect((await scrape(a)).series.get('belfry_connects_total')).toBe(1)
    } finally {
      await b.dispose()
    }
  })

  it('counts an authentication once auth_success goes out; one whose store read failed (1011) is a refusal (`other`)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-metrics-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const store = new SqliteStore(join(dir, 'belfry.db'))
    const touchUser = store.touchUser.bind(store)
    store.touchUser = (userId) => (userId === 'broken' ? Promise.reject(new Error('the database went away')) : touchUser(userId))
    const s = await start({ metrics: true, store })
    const c = await rawClient(s.wsUrl)
    c.send({ type: 'auth', token: await s.token('broken'), since: 0 })
    expect((await c.closed).code).toBe(CloseCode.InternalError)
    await authedClient(s, 'ann')
    await vi.waitFor(() => expect(s.server.stats().sockets).toBe(1))
    const { series } = await scrape(s)
    expect(series.get('belfry_authentications_total')).toBe(1)
    // Closed by the server before it authenticated: connects − authentications − refusals blames no client.
    expect(series.get('belfry_auth_failures_total{reason="other"}')).toBe(1)
  })

  it('counts no authenticated connection or user while its auth still reads the store (then refused 1011), nor /healthz', async () => {
    // It was in the registry (routing, the per-user cap) from signIn: the gauges counted it before auth_success.
    const dir = mkdtempSync(join(tmpdir(), 'belfry-metrics-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const store = new SqliteStore(join(dir, 'belfry.db'))
    let fail: ((error: Error) => void) | undefined
    const touchUser = store.touchUser.bind(store)
    store.touchUser = (userId) => (userId === 'stalled' ? new Promise((_, reject) => (fail = reject)) : touchUser(userId))
    const s = await start({ metrics: true, store })
    await authedClient(s, 'ann')
    const c = await rawClient(s.wsUrl)
    c.send({ type: 'auth', token: await s.token('stalled'), since: 0 })
    await vi.waitFor(() => expect(fail).toBeDefined())
    const { series } = await scrape(s)
    expect(series.get('belfry_open_sockets')).toBe(2)
    expect(series.get('belfry_authentications_total')).toBe(1)
    expect([series.get('belfry_open_connections'), series.get('belfry_connected_users')]).toEqual([1, 1])
    const health = await (await fetch(`${s.url}/healthz`, { headers: { authorization: `Bearer ${API_KEY}` } })).json()
    expect(health).toMatchObject({ users: 1, connections: 1 })
    fail!(new Error('the database went away'))
    expect((await c.closed).code).toBe(CloseCode.InternalError)
  })

  // ws closes such a socket itself and stops reading it: no close frame comes back, and it was counted as 1006.
  it('counts a socket ws closed for a frame it refused under the code ws sent, before auth and after', async () => {
    const s = await start({ metrics: true, limits: { maxFrameBytes: 4096 } })
    const { series: before } = await scrape(s)
    const large = await authedClient(s, 'ann')
    large.send({ type: 'ping', requestId: 'x'.repeat(10_000) })
    const notText = await authedClient(s, 'bob')
    notText.ws.send(Buffer.from([0xff, 0xfe]), { binary: false })
    const early = await rawClient(s.wsUrl)
    early.ws.send(Buffer.from([0xff]), { binary: false })
    expect([(await large.closed).code, (await notText.closed).code, (await early.closed).code]).toEqual([1009, 1007, 1007])
    await vi.waitFor(() => expect(s.server.stats().sockets).toBe(0))
    const changed = deltas(before, (await scrape(s)).series)
    expect(Object.fromEntries(Object.entries(changed).filter(([k]) => /closes|auth_failures/.test(k)))).toEqual({
      'belfry_closes_total{code="1009"}': 1,
      'belfry_closes_total{code="1007"}': 2,
      'belfry_auth_failures_total{reason="bad_frames"}': 1,
    })
  })

  it('times the admin API’s store calls and retention’s passes', async () => {
    const t = await start({ metrics: true, retention: { maxPerUser: 1 } })
    await vi.waitFor(async () =>
      expect((await scrape(t)).series.get('belfry_store_operation_seconds_count{operation="prune"}')).toBeGreaterThan(0),
    )
    const { series: before } = await scrape(t)
    await httpPublish(t.url, { userId: 'ann', title: 'n1', body: '' })
    await httpPublish(t.url, { userId: 'ann', title: 'n2', body: '' })
    const headers = { authorization: `Bearer ${API_KEY}` }
    expect((await fetch(`${t.url}/api/admin/prune`, { method: 'POST', headers })).status).toBe(200)
    expect((await fetch(`${t.url}/api/admin/users/ann`, { headers })).status).toBe(200)
    const changed = deltas(before, (await scrape(t)).series)
    expect(changed['belfry_store_operation_seconds_count{operation="user"}']).toBe(1)
    expect(changed['belfry_store_operation_seconds_count{operation="prune"}']).toBeGreaterThanOrEqual(1)
  })

  it('counts a scripted scenario exactly: connects, a bad token, publishes, deliveries, a replay, a slow consumer, a rate-limit cut', async () => {
    const t = await start({ metrics: true, limits: { maxBufferedBytes: 64 * 1024, rateBurst: 5, ratePerSecond: 1 } })
    const { series: before } = await scrape(t)
    expect(before.get('belfry_open_connections')).toBe(0)

    // Three users connect; none has anything stored, so no replay round reads the store.
    const [ann, bob, cat] = (await Promise.all(['ann', 'bob', 'cat'].map((u) => authedClient(t, u)))) as [RawClient, RawClient, RawClient]
    const during = (await scrape(t)).series
    expect(during.get('belfry_open_connections')).toBe(3)
    expect(during.get('belfry_connected_users')).toBe(3)
    expect(during.get('belfry_open_sockets')).toBe(3)

    // A bad token: refused with 4001.
    const bad = await rawClient(t.wsUrl)
    bad.send({ type: 'auth', token: 'not-a-token', since: 0 })
    expect((await bad.closed).code).toBe(CloseCode.TokenInvalid)

    // Publishes: two to ann over HTTP, one to ann and bob; each reaches its live connections.
    for (const title of ['one', 'two']) expect((await httpPublish(t.url, { userId: 'ann', title, body: '' })).status).toBe(201)
    await t.server.sendToUsers(['ann', 'bob'], { title: 'three', body: '' })
    await ann.next((f) => f.type === 'notification' && f.seq === 3)
    await bob.next((f) => f.type === 'notification' && f.seq === 1)

    // ann comes back on a second socket with no cursor (nothing acked): one round replays its three.
    const annAgain = await authedClient(t, 'ann')
    expect(annAgain.of('notification')).toHaveLength(3)

    // A slow consumer: authenticated, then reads nothing while notifications pile up, until it is cut off.
    const slow = await authedClient(t, 'slow')
    const socket = (slow.ws as unknown as { _socket: Socket })._socket
    socket.pause()
    const body = 'x'.repeat(8000)
    let flood = 0
    while (t.server.stats().connections === 5) {
      await t.server.sendToUser('slow', { title: `flood ${flood}`, body, data: { pad: 'y'.repeat(16_000) } })
      flood++
      expect(flood, 'cut off within the flood').toBeLessThan(5000)
    }
    socket.resume()
    expect((await slow.closed).code).toBe(CloseCode.SlowConsumer)

    // A user over its frame budget (a burst of 5): the 6th frame closes with 4029 (the first five are
    // answered as bad frames, which touch no store).
    const eve = await authedClient(t, 'eve')
    for (let i = 0; i < 8; i++) eve.send('not json')
    expect((await eve.closed).code).toBe(CloseCode.RateLimited)

    // The clients close (without a code: 1005 at the server).
    for (const c of [ann, bob, cat, annAgain]) c.close()
    await vi.waitFor(() => expect(t.server.stats().sockets).toBe(0))

    const { series: after } = await scrape(t)
    const published = 3 + flood
    // The server's timers read the store too: fan-out jobs every second, a reconcile every 30 s.
    const timers = /operation="(fanOut|latestSeqs)"/
    const changed = Object.fromEntries(Object.entries(deltas(before, after)).filter(([key]) => !timers.test(key)))
    expect(changed).toEqual({
      belfry_connects_total: 7,
      belfry_authentications_total: 6,
      'belfry_auth_failures_total{reason="token_invalid"}': 1,
      'belfry_closes_total{code="1005"}': 4,
      'belfry_closes_total{code="4001"}': 1,
      'belfry_closes_total{code="4009"}': 1,
      'belfry_closes_total{code="4029"}': 1,
      'belfry_publishes_total{kind="user"}': 2 + flood,
      'belfry_publishes_total{kind="users"}': 1,
      'belfry_publish_commit_seconds_count{kind="user"}': 2 + flood,
      'belfry_publish_commit_seconds_count{kind="users"}': 1,
      belfry_inbox_entries_total: 4 + flood,
      // ann 3, bob 1, and everything sent to the slow consumer, the one that tipped its buffer over included.
      belfry_deliveries_total: 4 + flood,
      belfry_replay_rounds_total: 1,
      belfry_replayed_notifications_total: 3,
      belfry_slow_consumer_cuts_total: 1,
      belfry_rate_limit_cuts_total: 1,
      'belfry_store_operation_seconds_count{operation="publish"}': published,
      'belfry_store_operation_seconds_count{operation="touchUser"}': 6,
      'belfry_store_operation_seconds_count{operation="after"}': 1,
      // The rate-limited client answered its 4029: what it was sent is acked (the slow consumer answered nothing).
      'belfry_store_operation_seconds_count{operation="ack"}': 1,
    })
    expect(after.get('belfry_open_connections')).toBe(0)
    expect(after.get('belfry_connected_users')).toBe(0)
    expect(after.get('belfry_broker_up')).toBe(1)
    // Timed, and the publishes took some time.
    expect(after.get('belfry_store_operation_seconds_sum{operation="publish"}')).toBeGreaterThan(0)
    expect(after.get('belfry_event_loop_lag_max_seconds')).toBeGreaterThanOrEqual(0)
  })

  it('keeps its series bounded: 10,000 users publishing and hundreds connecting add no series, and none names a user', async () => {
    const t = await start({ metrics: true })
    const { series: before } = await scrape(t)
    const users = Array.from({ length: 10_000 }, (_, i) => `user-${i.toString(36)}-${(i * 7919).toString(16)}`)

    // A publish to each of 10,000 users, a few at a time; the last 200 of them over HTTP.
    for (let i = 0; i < 9800; i += 100) {
      await Promise.all(users.slice(i, i + 100).map((userId) => t.server.sendToUser(userId, { title: 'hi', body: '' })))
    }
    const replies = await Promise.all(users.slice(9800).map((userId) => httpPublish(t.url, { userId, title: 'hi', body: '' })))
    for (const r of replies) expect(r.status).toBe(201)
    // 300 of them connect, each closing with a code of its own (3000–3299: all "other"), and as many bad tokens.
    for (let i = 0; i < 300; i += 50) {
      const clients = await Promise.all(users.slice(i, i + 50).map((u) => authedClient(t, u)))
      for (const [j, c] of clients.entries()) c.ws.close(3000 + i + j)
      const refused = await Promise.all(clients.map(() => rawClient(t.wsUrl)))
      for (const [j, r] of refused.entries()) r.send({ type: 'auth', token: `bad-${users[i + j]}`, since: 0 })
      await Promise.all(refused.map((r) => r.closed))
    }
    await vi.waitFor(() => expect(t.server.stats().sockets).toBe(0))

    const { text, series: after } = await scrape(t)
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort())
    expect(text).not.toMatch(/user-/)
    expect(after.get('belfry_publishes_total{kind="user"}')).toBe(10_000)
    expect(after.get('belfry_connects_total')).toBe(600)
    expect(after.get('belfry_closes_total{code="other"}')).toBe(300)
    expect(after.get('belfry_auth_failures_total{reason="token_invalid"}')).toBe(300)
  })
})

describe('/metrics on PostgreSQL and Redis', () => {
  let db: PgInstance | undefined
  let redis: RedisInstance | undefined
  beforeAll(async () => {
    ;[db, redis] = await Promise.all([startPostgres(), startRedis()])
  }, 180_000)
  afterAll(async () => {
    await Promise.all([db?.dispose(), redis?.dispose()])
  })

  it('counts the same, times PostgresStore, and reports the broker up', async () => {
    const store = await PostgresStore.open(db!.url, { schema: `t_${randomBytes(6).toString('hex')}` })
    const broker = await RedisBroker.connect(redis!.url, { logger: pino({ level: 'silent' }) })
    const t = await start({ metrics: true, store, broker })
    const { series: before } = await scrape(t)
    const ann = await authedClient(t, 'ann')
    expect((await httpPublish(t.url, { userId: 'ann', title: 'hi', body: '' })).status).toBe(201)
    await ann.next((f) => f.type === 'notification' && f.seq === 1)
    const { series: after } = await scrape(t)
    const changed = deltas(before, after)
    expect(changed).toMatchObject({
      belfry_connects_total: 1,
      belfry_authentications_total: 1,
      'belfry_publishes_total{kind="user"}': 1,
      belfry_inbox_entries_total: 1,
      belfry_deliveries_total: 1,
      'belfry_store_operation_seconds_count{operation="publish"}': 1,
      'belfry_store_operation_seconds_count{operation="touchUser"}': 1,
    })
    expect(changed).not.toHaveProperty('belfry_broker_errors_total')
    expect(after.get('belfry_broker_up')).toBe(1)
    expect(after.get('belfry_open_connections')).toBe(1)
    expect(after.get('belfry_store_operation_seconds_sum{operation="publish"}')).toBeGreaterThan(0)
  })
})
