/** What operators run into: an admin prune's counts, and close() when a step fails or comes early. */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { InProcessBroker, NotificationServer, SqliteStore } from '../../src/server/index.js'
import { range } from '../helpers/client.js'
import { API_KEY, httpPublish, SECRET, useServer } from '../helpers/server.js'

const start = useServer()
const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})
const tempFile = () => {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-lifecycle-'))
  dirs.push(dir)
  return join(dir, 'belfry.db')
}

describe('POST /api/admin/prune', () => {
  it('counts a user whose floor moved once, even when its entries take several batches', async () => {
    const t = await start({ store: new SqliteStore(tempFile(), { pruneBatch: 2 }) })
    for (const i of range(1, 6)) await httpPublish(t.url, { userId: 'ann', title: `n${i}`, body: '' })
    const res = await fetch(`${t.url}/api/admin/prune`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: '{"maxPerUser":1}',
    })
    // "users" is the users whose floor moved: one, ann (5 of her 6 entries went, in three batches).
    expect(await res.json()).toEqual({ removed: 5, unread: 5, users: 1, notifications: 5 })
  })
})

describe('close()', () => {
  it('closes the store even when the broker fails to close', async () => {
    class FailingBroker extends InProcessBroker {
      override close(): void {
        throw new Error('broker close failed')
      }
    }
    let storeClosed = false
    class WatchedStore extends SqliteStore {
      override async close(): Promise<void> {
        storeClosed = true
        await super.close()
      }
    }
    const store = new WatchedStore(tempFile())
    const server = new NotificationServer({
      secret: SECRET,
      apiKey: API_KEY,
      store,
      broker: new FailingBroker(),
      logger: pino({ level: 'silent' }),
    })
    await server.listen(0, '127.0.0.1')
    const error = await server.close().then(
      () => undefined,
      (e: unknown) => e,
    )
    const closedByServer = storeClosed
    await store.close() // the test's own cleanup
    // The broker's failure may be reported, but the database must not be left open (README: close() "closes the database").
    expect({ storeClosed: closedByServer, error: (error as Error | undefined)?.message }).toMatchObject({ storeClosed: true })
  })
})

describe('close() while listen() waits for the broker', () => {
  it('does not leave an HTTP server listening after close() resolved', async () => {
    // A broker that is slow to be ready (Redis at start): listen() waits for it.
    let ready!: () => void
    class SlowBroker extends InProcessBroker {
      override ready(): Promise<void> {
        return new Promise((resolve) => {
          ready = resolve
        })
      }
    }
    const server = new NotificationServer({
      secret: SECRET,
      apiKey: API_KEY,
      database: tempFile(),
      broker: new SlowBroker(),
      logger: pino({ level: 'silent' }),
    })
    const listening = server.listen(0, '127.0.0.1').then(
      ({ port }) => `listening on ${port}`,
      (e: unknown) => `refused: ${(e as Error).message}`,
    )
    await new Promise((resolve) => setImmediate(resolve))
    const closed = server.close() // a SIGTERM handler of the app, during start-up
    ready()
    await closed
    const outcome = await listening
    const stillListening = server.httpServer?.listening === true
    server.httpServer?.close()
    // After close() the server must not accept connections: listen() should refuse, not bind the port.
    expect({ outcome, stillListening }).toMatchObject({ stillListening: false })
  })
})

describe('close() while listen() binds its port', () => {
  it.each(['127.0.0.1', 'localhost'])('settles listen(0, %s): it refuses, and nothing is left listening', async (host) => {
    // Node emits neither `listening` nor `error` for a server closed while it binds: listen() never settled.
    const server = new NotificationServer({ secret: SECRET, apiKey: API_KEY, database: tempFile(), logger: pino({ level: 'silent' }) })
    await server.ready()
    const listening = server.listen(0, host).then(
      ({ port }) => `listening on ${port}`,
      (e: unknown) => `refused: ${(e as Error).message}`,
    )
    // listen() has made its HTTP server and asked Node to bind it (a microtask after the call: the broker is ready).
    for (let i = 0; i < 100 && !server.httpServer; i++) await Promise.resolve()
    expect(server.httpServer).toBeDefined()
    await server.close() // a SIGTERM handler of the app, during start-up
    expect(await listening).toBe('refused: server is closed')
    expect(server.httpServer?.listening ?? false).toBe(false)
  })
})

describe('listen()', () => {
  const servers: NotificationServer[] = []
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.close().catch(() => {})
  })
  const make = () => {
    const server = new NotificationServer({ secret: SECRET, apiKey: API_KEY, database: tempFile(), logger: pino({ level: 'silent' }) })
    servers.push(server)
    return server
  }

  // Regression: the server was attached to the HTTP server it made before it listened, and stayed attached when
  // that failed: every later listen() said "already attached to an HTTP server".
  it('after one that failed (a taken or bad port, an unknown host), listens elsewhere', async () => {
    const holder = createServer().listen(0, '127.0.0.1')
    await new Promise((resolve) => holder.once('listening', resolve))
    const taken = (holder.address() as { port: number }).port
    try {
      for (const [port, host] of [
        [taken, '127.0.0.1'],
        [-1, '127.0.0.1'],
        [70_000, '127.0.0.1'],
        [0, 'no-such-host.invalid'],
      ] as const) {
        const server = make()
        await expect(server.listen(port, host), `${port} ${host}`).rejects.toThrow()
        const again = await server.listen(0, '127.0.0.1').catch((e: unknown) => e)
        expect(again, `listen(0) after listen(${port}, ${host})`).toEqual({ port: expect.any(Number) })
        expect((await fetch(`http://127.0.0.1:${(again as { port: number }).port}/healthz`)).status).toBe(200)
      }
    } finally {
      holder.close()
    }
  })

  it('called twice while the broker is not ready yet, refuses the second, and nothing listens after close()', async () => {
    // Both checked for an HTTP server before they waited: each made one, and close() stopped only the second.
    const server = make()
    const outcomes = await Promise.all(
      [server.listen(0, '127.0.0.1'), server.listen(0, '127.0.0.1')].map((p) =>
        p.then(
          ({ port }) => port,
          (e: unknown) => (e as Error).message,
        ),
      ),
    )
    expect(outcomes).toEqual([expect.any(Number), 'already attached to an HTTP server'])
    await server.close()
    const answers = await fetch(`http://127.0.0.1:${outcomes[0]}/healthz`).then(
      () => true,
      () => false,
    )
    expect(answers).toBe(false)
  })

  it('refuses a port that is no whole number from 0 to 65535 with a TypeError naming it (Node took "abc" as a Unix socket)', async () => {
    for (const port of ['abc', '3000', 1.5, -1, 70_000, Number.NaN]) {
      await expect(make().listen(port as never, '127.0.0.1'), String(port)).rejects.toThrow(
        new TypeError(`listen: port must be a whole number from 0 to 65535; got ${typeof port === 'string' ? `"${port}"` : port}`),
      )
    }
  })
})
