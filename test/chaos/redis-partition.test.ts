/**
 * Redis faults that close nothing, between a server process and Redis: a
 * black hole (nothing forwarded, nothing closed) on one process's two
 * connections, and a resubscription that Redis confirms only seconds later.
 * Only a question left unanswered shows the first (the broker's PING probe);
 * the second must end with the broker up again. Meanwhile the store is the
 * truth: the process says `degraded`, reads the store for its users, and its
 * publishes do not wait on Redis.
 */
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { PostgresStore, RedisBroker } from '../../src/server/index.js'
import { MarkerProxy } from '../helpers/marker-proxy.js'
import { authedClient, httpPublish, type RawClient, startServer, type TestServer } from '../helpers/server.js'
import { ChaosProxy } from './proxy.js'
import { ownServices, sleep } from './util.js'

// This file's own: its tests cut and slow them.
const services = ownServices()

const cleanUp: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const step of cleanUp.splice(0).reverse()) await Promise.resolve(step()).catch(() => {})
})

const logger = pino({ level: 'silent' })
const notes = (c: RawClient) => c.of('notification').map((f) => [f.seq, f.title])

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (!check() && Date.now() < end) await sleep(50)
  return check()
}

/** Two processes on one PostgreSQL schema and one Redis channel; B reaches Redis through a proxy. */
async function pair(): Promise<{ a: TestServer; b: TestServer; proxy: ChaosProxy }> {
  const schema = `p_${randomBytes(5).toString('hex')}`
  const channel = `belfry:${schema}`
  const proxy = new ChaosProxy({ host: '127.0.0.1', port: services.redis.port })
  const proxyPort = await proxy.listen()
  cleanUp.push(() => proxy.close())
  const a = await startServer({
    store: await PostgresStore.open(services.db.url, { schema }),
    broker: await RedisBroker.connect(services.redis.url, { channel, logger }),
  })
  cleanUp.push(() => a.dispose())
  const b = await startServer({
    store: await PostgresStore.open(services.db.url, { schema }),
    broker: await RedisBroker.connect(`redis://127.0.0.1:${proxyPort}`, { channel, logger }),
  })
  cleanUp.push(async () => {
    proxy.heal()
    await b.dispose()
  })
  return { a, b, proxy }
}

describe('Redis silent to one process (a black hole)', () => {
  it('the process says degraded, and its publish is answered without waiting for Redis', async () => {
    const { a, b, proxy } = await pair()
    const bob = await authedClient(b, 'bob')
    expect((await httpPublish(a.url, { userId: 'bob', title: 'before', body: '' })).status).toBe(201)
    expect(await until(() => notes(bob).length === 1, 5000)).toBe(true)
    proxy.blackhole()
    const t0 = performance.now()
    expect((await httpPublish(b.url, { userId: 'bob', title: 'from b', body: '' })).status).toBe(201)
    // The broker's publish gives up after PUBLISH_TIMEOUT_MS (1 s), not ioredis's 5 s commandTimeout.
    expect(performance.now() - t0).toBeLessThan(2000)
    expect(await until(() => notes(bob).length === 2, 2000)).toBe(true) // delivered by B itself
    const health = (await (await fetch(`${b.url}/healthz`)).json()) as { status: string }
    expect(health.status).toBe('degraded')
  })

  it("a client of the process gets another process's publish from the store within seconds, not at the 30 s reconcile", async () => {
    const { a, b, proxy } = await pair()
    const bob = await authedClient(b, 'bob')
    expect((await httpPublish(a.url, { userId: 'bob', title: 'before', body: '' })).status).toBe(201)
    expect(await until(() => notes(bob).length === 1, 5000)).toBe(true)
    proxy.blackhole() // B publishes nothing: only the probe's unanswered PING tells it
    expect((await httpPublish(a.url, { userId: 'bob', title: 'during', body: '' })).status).toBe(201)
    // Found within PROBE_MS + PROBE_TIMEOUT_MS (3 s); then the store is read every second.
    expect(await until(() => notes(bob).length === 2, 8000)).toBe(true)
    expect(notes(bob)).toEqual([
      [1, 'before'],
      [2, 'during'],
    ])
  })

  it('once it heals: every notification once, in seq order, on both processes', async () => {
    const { a, b, proxy } = await pair()
    const onB = await authedClient(b, 'bob')
    const onA = await authedClient(a, 'bob')
    expect((await httpPublish(a.url, { userId: 'bob', title: 'n1', body: '' })).status).toBe(201)
    expect(await until(() => notes(onB).length === 1 && notes(onA).length === 1, 5000)).toBe(true)
    proxy.blackhole()
    expect((await httpPublish(a.url, { userId: 'bob', title: 'n2', body: '' })).status).toBe(201)
    const fromB = httpPublish(b.url, { userId: 'bob', title: 'n3', body: '' })
    await sleep(300)
    expect((await httpPublish(a.url, { userId: 'bob', title: 'n4', body: '' })).status).toBe(201)
    expect((await fromB).status).toBe(201)
    expect((await httpPublish(a.url, { userId: 'bob', title: 'n5', body: '' })).status).toBe(201)
    proxy.heal()
    await sleep(1500)
    expect((await httpPublish(a.url, { userId: 'bob', title: 'n6', body: '' })).status).toBe(201)
    const all = [1, 2, 3, 4, 5, 6].map((n) => [n, `n${n}`])
    await until(() => notes(onB).length >= 6 && notes(onA).length >= 6, 10_000)
    await sleep(500) // nothing more comes: no copy
    expect({ b: notes(onB), a: notes(onA) }).toEqual({ b: all, a: all })
  })
})

describe('Redis slow to answer a resubscription', () => {
  it('ends with the broker up again: /healthz ok, delivery through the broker', async () => {
    // Longer than the publisher's 5 s commandTimeout: a SUBSCRIBE that timed out was never sent again.
    // Once armed, the next connection to send a SUBSCRIBE gets every reply 6 s late.
    const proxy = new MarkerProxy(services.redis.port, (chunk, { client }) => setTimeout(() => client.write(chunk), 6000))
    const port = await proxy.listen()
    cleanUp.push(() => proxy.close())
    const broker = await RedisBroker.connect(`redis://127.0.0.1:${port}`, { channel: 'belfry:slow', logger })
    const s = await startServer({ broker })
    cleanUp.push(() => s.dispose())
    const admin = new Redis(services.redis.url)
    cleanUp.push(() => admin.disconnect())
    const ann = await authedClient(s, 'ann')
    expect((await httpPublish(s.url, { userId: 'ann', title: 'a', body: '' })).status).toBe(201)
    proxy.arm('subscribe')
    await admin.client('KILL', 'TYPE', 'pubsub') // the subscriber reconnects; its SUBSCRIBE is answered late
    expect(await until(() => proxy.marked === 1, 5000)).toBe(true)
    let status = ''
    const end = Date.now() + 20_000
    while (status !== 'ok' && Date.now() < end) {
      await sleep(500)
      status = ((await (await fetch(`${s.url}/healthz`)).json()) as { status: string }).status
    }
    expect({ status, up: broker.up }).toEqual({ status: 'ok', up: true })
    expect(Number((await admin.pubsub('NUMSUB', 'belfry:slow'))[1])).toBe(1)
    expect((await httpPublish(s.url, { userId: 'ann', title: 'b', body: '' })).status).toBe(201)
    expect(await until(() => notes(ann).length === 2, 2000)).toBe(true)
  })
})

describe('Redis silent at shutdown', () => {
  it('close() finishes within seconds when Redis stopped answering a moment ago (the partition not noticed yet)', async () => {
    // Regression: close() sent QUIT on connections still `ready`; the subscriber's has no command timeout, so shutdown (SIGTERM) hung until TCP gave up.
    const proxy = new ChaosProxy({ host: '127.0.0.1', port: services.redis.port })
    const port = await proxy.listen()
    cleanUp.push(() => proxy.close())
    const broker = await RedisBroker.connect(`redis://127.0.0.1:${port}`, { channel: 'belfry:shutdown', logger })
    const s = await startServer({ broker, drainMs: 0 })
    let closed: Promise<void> | undefined
    cleanUp.push(async () => {
      proxy.heal()
      await closed
      await s.dispose()
    })
    // A partition (no FIN, no RST) that began just before the deploy's SIGTERM: the broker has not noticed yet.
    proxy.blackhole()
    const t0 = performance.now()
    closed = s.server.close()
    const outcome = await Promise.race([closed.then(() => 'closed'), sleep(6000).then(() => 'still closing')])
    const ms = Math.round(performance.now() - t0)
    // QUIT is given about a second (QUIT_TIMEOUT_MS), then the connections are dropped.
    expect({ outcome, quick: ms < 3000, ms }).toMatchObject({ outcome: 'closed', quick: true })
  }, 15_000)
})
