/**
 * What one user (or an anonymous socket) can cost the server: the byte and
 * frame budgets shared by a user's connections, announced-only resumes,
 * sockets refused before auth, topic caps and authorization.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { pino } from 'pino'
import { describe, expect, it, vi } from 'vitest'
import type WebSocket from 'ws'
import { CloseCode, ErrorCode } from '../../src/protocol/index.js'
import { SqliteStore, topicsClaim } from '../../src/server/index.js'
import { ClientPool, holds } from '../helpers/client.js'
import { signToken } from '../helpers/jwt.js'
import { API_KEY, authedClient, httpPublish, type RawClient, rawClient, type TestServer, useServer } from '../helpers/server.js'

const start = useServer()
const netSocket = (ws: WebSocket) => (ws as unknown as { _socket: Socket })._socket

async function publishMany(s: TestServer, userId: string, n: number, body = ''): Promise<void> {
  for (let i = 1; i <= n; i++) await s.server.sendToUser(userId, { title: `n${i}`, body })
}

describe('what a user’s requests make the server send is bounded in bytes', () => {
  it('reconnecting with since: 0 does not multiply the replay: past the budget, rounds wait', async () => {
    const s = await start({ limits: { sendBurstBytes: 64 * 1024, sendBytesPerSecond: 16 * 1024 } })
    await publishMany(s, 'mallory', 100, 'x'.repeat(2000)) // ≈ 210 KB of replay
    const sockets: RawClient[] = []
    const token = await s.token('mallory')
    for (let i = 0; i < 10; i++) {
      const c = await rawClient(s.wsUrl)
      c.send({ type: 'auth', token, since: 0 })
      sockets.push(c)
    }
    // Without the budget each of the 10 gets all 100 at once: 1,000 notifications, 2 MB.
    await vi.waitFor(() => expect(sockets[0]!.of('notification')).toHaveLength(100))
    await holds(() => expect(sockets.reduce((n, c) => n + c.of('notification').length, 0)).toBeLessThanOrEqual(200), 1000)
    for (const c of sockets) c.close()
  })

  it('history pages are paid from the same budget', async () => {
    const s = await start({ limits: { sendBurstBytes: 32 * 1024, sendBytesPerSecond: 8 * 1024 } })
    await publishMany(s, 'mallory', 100, 'x'.repeat(1000))
    const c = await authedClient(s, 'mallory', { since: 100 }) // no replay: only the pages cost
    for (let i = 0; i < 20; i++) c.send({ type: 'history', limit: 100, requestId: `h${i}` })
    await c.next((f) => f.type === 'history')
    // Without the budget, 20 pages of ≈ 110 KB answer at once.
    await holds(() => expect(c.of('history').length).toBeLessThanOrEqual(2), 1000)
    c.close()
  })

  it('an honest client catching up on more than the budget still gets everything, once, in order', async () => {
    const s = await start({ limits: { sendBurstBytes: 16 * 1024, sendBytesPerSecond: 256 * 1024, replayBatch: 20 } })
    await publishMany(s, 'ann', 200, 'y'.repeat(500))
    const clients = new ClientPool()
    const { events } = await clients.online({ url: s.wsUrl, token: () => s.token('ann') })
    await vi.waitFor(() => expect(events.seqs()).toHaveLength(200), { timeout: 10_000 })
    expect(events.seqs()).toEqual(Array.from({ length: 200 }, (_, i) => i + 1))
    clients.closeAll()
  })
})

describe('topics', () => {
  it('subscribes to a batch of topics with one frame and one reply', async () => {
    const s = await start()
    const c = await authedClient(s, 'ann')
    const topics = Array.from({ length: 150 }, (_, i) => `t${i}`)
    c.send({ type: 'subscribe', topics, requestId: 'all' })
    expect(await c.next((f) => f.requestId === 'all')).toEqual({ type: 'subscribed', topics, requestId: 'all' })
    expect((await s.server.publish('t149', { title: 'x', body: '' })).recipients).toBe(1)
    c.send({ type: 'unsubscribe', topics: topics.slice(0, 149), requestId: 'most' })
    expect(await c.next((f) => f.requestId === 'most')).toEqual({ type: 'unsubscribed', topics: topics.slice(0, 149), requestId: 'most' })
    expect((await s.server.publish('t0', { title: 'x', body: '' })).recipients).toBe(0)
    c.close()
  })

  it('a client holding more topics than the frame burst restores them after a restart without being rate limited', async () => {
    const s = await start()
    const clients = new ClientPool()
    const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token('ann') })
    const topics = Array.from({ length: 80 }, (_, i) => `topic-${i}`)
    for (const topic of topics) client.subscribe(topic)
    await client.history({ limit: 1 }) // after the subscribe frame
    await s.restart({ freshDatabase: true })
    await vi.waitFor(() => expect(events.count('online')).toBe(2))
    await client.history({ limit: 1 })
    expect((await s.server.publish('topic-79', { title: 'x', body: '' })).recipients).toBe(1)
    expect(events.statuses.filter((e) => e.reason === `close ${CloseCode.RateLimited}`)).toEqual([])
    clients.closeAll()
  })

  it('caps subscriptions per user and topic length, saying why for each refused topic', async () => {
    const s = await start({ limits: { maxSubscriptionsPerUser: 3, maxTopicLength: 10 } })
    const c = await authedClient(s, 'ann')
    c.send({ type: 'subscribe', topics: ['a', 'b', 'much-too-long-topic', 'c', 'd'], requestId: 'batch' })
    expect(await c.next((f) => f.requestId === 'batch')).toEqual({
      type: 'subscribed',
      topics: ['a', 'b', 'c'],
      refused: [
        { topic: 'much-too-long-topic', code: ErrorCode.TopicTooLong },
        { topic: 'd', code: ErrorCode.TooManySubscriptions },
      ],
      requestId: 'batch',
    })
    c.send({ type: 'subscribe', topic: 'e', requestId: 'one' })
    expect(await c.next((f) => f.requestId === 'one')).toMatchObject({
      type: 'error',
      code: ErrorCode.TooManySubscriptions,
      message: 'at most 3 subscriptions per user',
    })
    c.send({ type: 'subscribe', topic: 'a', requestId: 'held' })
    expect(await c.next((f) => f.requestId === 'held')).toEqual({ type: 'subscribed', topic: 'a', requestId: 'held' })
    const publish = await httpPublish(s.url, { topic: 'much-too-long-topic', title: 't', body: '' })
    expect(publish.status).toBe(400)
    expect(publish.json.message).toMatch(/"topic" must be a string of 1–10 characters/)
    c.close()
  })

  it('refuses a topic no store keeps (a lone surrogate, U+0000) on its own as bad_topic, the others of its frame subscribed', async () => {
    const s = await start({ dev: true })
    const c = await authedClient(s, 'ann')
    const cut = 'team-🚀'.slice(0, 6) // cut in the middle of an emoji: a lone surrogate
    c.send({ type: 'subscribe', topics: ['deploys', cut, 'team\u0000a', 'alerts'], requestId: 'batch' })
    expect(await c.next((f) => f.requestId === 'batch')).toEqual({
      type: 'subscribed',
      topics: ['deploys', 'alerts'],
      refused: [
        { topic: cut, code: ErrorCode.BadTopic },
        { topic: 'team\u0000a', code: ErrorCode.BadTopic },
      ],
      requestId: 'batch',
    })
    c.send({ type: 'subscribe', topic: cut, requestId: 'one' })
    expect(await c.next((f) => f.requestId === 'one')).toMatchObject({ type: 'error', code: ErrorCode.BadTopic })
    // Unsubscribing from one is no error (it is no subscription), and the others of its frame end.
    c.send({ type: 'unsubscribe', topics: [cut, 'alerts'], requestId: 'off' })
    expect(await c.next((f) => f.requestId === 'off')).toEqual({ type: 'unsubscribed', topics: [cut, 'alerts'], requestId: 'off' })
    const stored = (await (await fetch(`${s.url}/api/dev/topics?user=ann`)).json()) as { topics: string[] }
    expect(stored.topics).toEqual(['deploys'])
    c.close()
  })

  it('asks authorizeSubscribe, with the token’s claims; a refusal is forbidden', async () => {
    const asked: [string, string, unknown][] = []
    const s = await start({
      authorizeSubscribe: async (userId, topic, claims) => {
        asked.push([userId, topic, claims.tenant])
        return topic.startsWith(`tenant:${String(claims.tenant)}:`)
      },
    })
    const c = await rawClient(s.wsUrl)
    c.send({ type: 'auth', token: await signToken({ sub: 'ann', claims: { tenant: 'acme' } }), since: 0 })
    await c.next((f) => f.type === 'replayed')
    c.send({ type: 'subscribe', topic: 'tenant:globex:billing', requestId: 'other' })
    expect(await c.next((f) => f.requestId === 'other')).toMatchObject({ type: 'error', code: ErrorCode.Forbidden })
    c.send({ type: 'subscribe', topics: ['tenant:acme:billing', 'admin'], requestId: 'batch' })
    expect(await c.next((f) => f.requestId === 'batch')).toEqual({
      type: 'subscribed',
      topics: ['tenant:acme:billing'],
      refused: [{ topic: 'admin', code: ErrorCode.Forbidden }],
      requestId: 'batch',
    })
    expect(asked).toContainEqual(['ann', 'admin', 'acme'])
    expect((await s.server.publish('tenant:globex:billing', { title: 'x', body: '' })).recipients).toBe(0)
    expect((await s.server.publish('admin', { title: 'x', body: '' })).recipients).toBe(0)
    c.close()
  })

  it('checks stored subscriptions again at every auth: a revoked grant stops delivery', async () => {
    const s = await start({ authorizeSubscribe: topicsClaim() })
    const first = await rawClient(s.wsUrl)
    first.send({ type: 'auth', token: await signToken({ sub: 'ann', claims: { topics: ['deploys', 'team:*'] } }), since: 0 })
    await first.next((f) => f.type === 'replayed')
    first.send({ type: 'subscribe', topics: ['deploys', 'team:core', 'teams'], requestId: 's' })
    expect(await first.next((f) => f.requestId === 's')).toMatchObject({
      topics: ['deploys', 'team:core'],
      refused: [{ topic: 'teams', code: ErrorCode.Forbidden }],
    })
    first.close()
    expect((await s.server.publish('team:core', { title: 'x', body: '' })).recipients).toBe(1)
    // A new token without team:*.
    const second = await rawClient(s.wsUrl)
    second.send({ type: 'auth', token: await signToken({ sub: 'ann', claims: { topics: ['deploys'] } }), since: 0 })
    await second.next((f) => f.type === 'replayed')
    expect((await s.server.publish('team:core', { title: 'y', body: '' })).recipients).toBe(0)
    expect((await s.server.publish('deploys', { title: 'z', body: '' })).recipients).toBe(1)
    second.close()
  })
})

describe('sockets before auth', () => {
  /** A logger whose lines the test can read. */
  const capture = () => {
    const lines: Record<string, unknown>[] = []
    return { lines, logger: pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line)) }) }
  }

  /** A client that sends a bad token and then stops reading: it never sees, nor answers, the close. */
  async function refusedAndDeaf(s: TestServer, lines: Record<string, unknown>[]): Promise<RawClient> {
    const before = lines.filter((l) => l.msg === 'auth refused').length
    const c = await rawClient(s.wsUrl)
    c.send({ type: 'auth', token: 'not-a-token', since: 0 })
    netSocket(c.ws).pause()
    await vi.waitFor(() => expect(lines.filter((l) => l.msg === 'auth refused')).toHaveLength(before + 1))
    return c
  }

  it('terminates a socket refused at auth that never answers the close handshake, soon (not after 30 s)', async () => {
    const { lines, logger } = capture()
    const s = await start({ logger })
    const c = await refusedAndDeaf(s, lines)
    // Closing, it still counts against maxUnauthenticated (it holds a socket all the same).
    expect(s.server.stats()).toMatchObject({ sockets: 1, unauthenticated: 1 })
    await vi.waitFor(() => expect(s.server.stats()).toMatchObject({ sockets: 0, unauthenticated: 0 }), { timeout: 5000 })
    c.ws.terminate()
  })

  it('counts closing sockets against maxUnauthenticated: a newcomer evicts the oldest of them', async () => {
    const { lines, logger } = capture()
    const s = await start({ logger, limits: { maxUnauthenticated: 2 } })
    const refused = [await refusedAndDeaf(s, lines), await refusedAndDeaf(s, lines)]
    expect(s.server.stats()).toMatchObject({ sockets: 2, unauthenticated: 2 })
    const newcomer = await authedClient(s, 'ann')
    expect(s.server.stats().unauthenticated).toBeLessThanOrEqual(1)
    newcomer.close()
    for (const c of refused) c.ws.terminate()
  })

  it('refuses a first frame larger than maxAuthFrameBytes as a token too large (4001), without parsing it', async () => {
    const s = await start()
    const c = await rawClient(s.wsUrl)
    // Not even JSON: the frame is judged by its size alone.
    c.send(`{"type":"auth","token":"${'x'.repeat(17 * 1024)}`)
    expect((await c.closed).code).toBe(CloseCode.TokenInvalid)
    expect(c.frames).toEqual([{ type: 'auth_error', code: ErrorCode.TokenInvalid, message: expect.stringContaining('maxAuthFrameBytes') }])
  })

  it('does not let a socket idle before auth sending valid frames one at a time', async () => {
    const s = await start()
    const c = await rawClient(s.wsUrl)
    for (let i = 0; i < 12 && c.ws.readyState === c.ws.OPEN; i++) {
      c.send({ type: 'ping', requestId: `p${i}` })
      await c.next((f) => f.requestId === `p${i}`).catch(() => undefined)
    }
    expect((await c.closed).code).toBe(CloseCode.ProtocolViolation)
    expect(c.of('error').length).toBeLessThanOrEqual(10)
  })
})

describe('failed auths are logged', () => {
  it('at warn, with the reason and never the token', async () => {
    const lines: Record<string, unknown>[] = []
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line)) })
    const s = await start({ logger })
    const token = await signToken({ sub: 'ann', expIn: -10 })
    const c = await rawClient(s.wsUrl)
    c.send({ type: 'auth', token, since: 0 })
    await c.closed
    const refused = lines.filter((l) => l.msg === 'auth refused')
    expect(refused).toHaveLength(1)
    expect(refused[0]).toMatchObject({ level: 40, code: ErrorCode.TokenExpired, reason: 'token expired' })
    expect(JSON.stringify(lines)).not.toContain(token.split('.')[1])
  })
})

describe('a store that cannot take writes', () => {
  it('full: publishes answer 503 (nothing acknowledged), /healthz says so, the server stays up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-full-'))
    const store = new SqliteStore(join(dir, 'full.db'), { maxBytes: 256 * 1024 })
    const s = await start({ store })
    const ann = await authedClient(s, 'ann')
    const statuses: number[] = []
    for (let i = 0; i < 200 && !statuses.includes(503); i++) {
      statuses.push((await httpPublish(s.url, { userId: 'ann', title: `n${i}`, body: 'x'.repeat(4000) })).status)
    }
    expect(statuses.at(-1)).toBe(503)
    expect(statuses.slice(0, -1).every((status) => status === 201)).toBe(true)
    const refused = await httpPublish(s.url, { userId: 'ann', title: 'more', body: 'x'.repeat(4000) })
    expect(refused).toMatchObject({ status: 503, json: { error: 'unavailable' } })
    // The store's own words are for operators: with the API key.
    const health = await fetch(`${s.url}/healthz`, { headers: { authorization: `Bearer ${API_KEY}` } })
    expect(health.status).toBe(503)
    expect(await health.json()).toMatchObject({ status: 'unavailable', reason: expect.stringMatching(/full/) })
    // Every acknowledged publish is there, and the connection lives on.
    const acknowledged = statuses.filter((status) => status === 201).length
    await vi.waitFor(() => expect(ann.of('notification')).toHaveLength(acknowledged))
    ann.send({ type: 'ping', requestId: 'alive' })
    await ann.next((f) => f.requestId === 'alive')
    ann.close()
    rmSync(dir, { recursive: true, force: true })
  })
})

describe('a store whose database directory is removed under the running server', () => {
  it('answers no 201 for a publish it cannot make durable, and /healthz says why', async () => {
    // SQLite goes on writing to the unlinked file it holds open: gone at the next start.
    const s = await start()
    expect((await httpPublish(s.url, { userId: 'ann', title: 'before', body: '' })).status).toBe(201)
    rmSync(dirname(s.database), { recursive: true, force: true })
    const after = await httpPublish(s.url, { userId: 'ann', title: 'after removal', body: '' })
    expect(after).toMatchObject({ status: 503, json: { error: 'unavailable', message: expect.stringMatching(/was removed/) } })
    await expect(s.server.sendToUser('ann', { title: 'in code', body: '' })).rejects.toThrow(/was removed/)
    const health = await fetch(`${s.url}/healthz`, { headers: { authorization: `Bearer ${API_KEY}` } })
    expect(health.status).toBe(503)
    expect(await health.json()).toMatchObject({ status: 'unavailable', reason: expect.stringMatching(/was removed/) })
  })
})

describe('what /healthz tells and costs a caller without the API key', () => {
  // Regression: /healthz put the store's error text (internal hosts, user names) in `reason` for anyone.
  it('does not echo the store’s error text without the API key; with it, it does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-health-'))
    const store = new SqliteStore(join(dir, 'h.db'))
    // What a PostgreSQL store's probe throws when its database is away.
    store.check = async () => {
      throw new Error('connect ECONNREFUSED 10.20.30.40:5432 (password authentication failed for user "belfry_admin")')
    }
    try {
      const s = await start({ store })
      for (const headers of [{}, { authorization: 'Bearer not-the-key' }]) {
        const res = await fetch(`${s.url}/healthz`, { headers })
        expect(res.status).toBe(503)
        const body = (await res.json()) as Record<string, unknown>
        expect(body).toMatchObject({ status: 'unavailable', reason: expect.stringMatching(/^store: /) })
        expect(JSON.stringify(body)).not.toMatch(/10\.20\.30\.40|belfry_admin/)
      }
      const operator = await fetch(`${s.url}/healthz`, { headers: { authorization: `Bearer ${API_KEY}` } })
      expect(await operator.json()).toMatchObject({ status: 'unavailable', reason: expect.stringContaining('belfry_admin') })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  // Regression: each /healthz request ran the store's write probe: an anonymous flood was a flood of database writes.
  it('does not make each request a database write: concurrent requests share a probe, whose result serves for a while', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-health-'))
    const store = new SqliteStore(join(dir, 'p.db'))
    const check = store.check.bind(store)
    let probes = 0
    store.check = async () => {
      probes++
      return check()
    }
    try {
      const s = await start({ store })
      const before = probes
      // An anonymous flood: 200 requests, 20 at a time.
      for (let i = 0; i < 10; i++) {
        const statuses = await Promise.all(Array.from({ length: 20 }, () => fetch(`${s.url}/healthz`).then((r) => r.status)))
        expect(statuses.every((status) => status === 200)).toBe(true)
      }
      expect(probes - before).toBeLessThanOrEqual(20)
      // The result is reused for a short time only: later, the store is probed again.
      const seen = probes
      await new Promise((r) => setTimeout(r, 1100))
      expect((await fetch(`${s.url}/healthz`)).status).toBe(200)
      expect(probes).toBe(seen + 1)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
