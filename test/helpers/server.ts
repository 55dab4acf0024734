import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Duplex } from 'node:stream'
import { pino } from 'pino'
import { afterEach } from 'vitest'
import WebSocket from 'ws'
import { DEV_API_KEY, DEV_SECRET } from '../../src/server/config.js'
import { mintToken, NotificationServer, type ServerOptions } from '../../src/server/index.js'

export const SECRET = 'test-secret-0123456789abcdef'
export const API_KEY = 'test-api-key-123'

export interface TestServer {
  server: NotificationServer
  /** http://127.0.0.1:port */
  url: string
  /** ws://127.0.0.1:port/ws */
  wsUrl: string
  port: number
  database: string
  token(userId: string, ttlSeconds?: number): Promise<string>
  /** Closes the server; the database stays. */
  stop(): Promise<void>
  /**
   * Starts a new server on the same port: on the same database, or with
   * `freshDatabase` on a new, empty one (a server that lost all its state).
   */
  restart(options?: { freshDatabase?: boolean }): Promise<void>
  /** Stops and removes the database. */
  dispose(): Promise<void>
}

/**
 * Starts a real server on a free port with a fresh SQLite file. In dev mode it runs on the
 * published dev secrets (the only ones dev mode takes), and `token` mints with them.
 */
export async function startServer(options: Partial<ServerOptions> = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-test-'))
  let database = join(dir, 'belfry.db')
  let databases = 1
  const secrets = options.dev ? { secret: DEV_SECRET, apiKey: DEV_API_KEY } : { secret: SECRET, apiKey: API_KEY }
  const make = () => new NotificationServer({ ...secrets, database, logger: pino({ level: 'silent' }), ...options })
  let server = make()
  const { port } = await server.listen(0, '127.0.0.1')
  const t: TestServer = {
    server,
    port,
    database,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    token: (userId, ttl) => mintToken(secrets.secret, userId, ttl),
    stop: () => server.close(),
    async restart({ freshDatabase = false } = {}) {
      await server.close()
      if (freshDatabase) {
        database = join(dir, `belfry-${++databases}.db`)
        t.database = database
      }
      server = make()
      t.server = server
      await server.listen(port, '127.0.0.1')
    },
    async dispose() {
      await server.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
  return t
}

/** A raw ws client that records every frame and close. */
export interface RawClient {
  ws: WebSocket
  frames: Record<string, unknown>[]
  closed: Promise<{ code: number; reason: string }>
  send(frame: unknown): void
  /** Resolves with the first recorded frame (from `from`) that matches. */
  next(match: (f: Record<string, unknown>) => boolean, from?: number): Promise<Record<string, unknown>>
  of(type: string): Record<string, unknown>[]
  close(): void
}

export async function rawClient(url: string, options: WebSocket.ClientOptions = {}): Promise<RawClient> {
  const ws = new WebSocket(url, options)
  const frames: Record<string, unknown>[] = []
  const waiters = new Set<() => void>()
  ws.on('message', (data) => {
    try {
      frames.push(JSON.parse(data.toString()))
    } catch {
      frames.push({ type: '<unparsable>', raw: data.toString() })
    }
    for (const w of waiters) w()
  })
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() })
      for (const w of waiters) w()
    })
  })
  ws.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
  const client: RawClient = {
    ws,
    frames,
    closed,
    send: (frame) => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
    of: (type) => frames.filter((f) => f.type === type),
    next(match, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = frames.slice(from).find(match)
          if (found) {
            waiters.delete(check)
            resolve(found)
          } else if (ws.readyState === WebSocket.CLOSED) {
            waiters.delete(check)
            reject(new Error(`socket closed before a matching frame; got ${JSON.stringify(frames.slice(-5))}`))
          }
        }
        waiters.add(check)
        check()
      })
    },
    close: () => ws.close(),
  }
  return client
}

/** Connects and authenticates; resolves once the first replay round is over. */
export async function authedClient(t: TestServer, userId: string, extra: { since?: number } = {}): Promise<RawClient> {
  const c = await rawClient(t.wsUrl)
  // `since: 0`: no cursor, as belfry's client says it (without one, the server takes it for the article's client).
  c.send({ type: 'auth', token: await t.token(userId), userId, since: 0, ...extra })
  await c.next((f) => f.type === 'replayed' && f.more === false)
  return c
}

/**
 * Round-trips a ping. The server handles a connection's frames in order and
 * a socket delivers in order, so once the pong is here, everything the server
 * sent before it is here too.
 */
export async function settle(c: RawClient): Promise<void> {
  const requestId = randomUUID()
  c.send({ type: 'ping', requestId })
  await c.next((f) => f.type === 'pong' && f.requestId === requestId)
}

/** POSTs to the publish API. */
export async function httpPublish(url: string, body: unknown, key = API_KEY): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${url}/api/notifications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
  return { status: res.status, json: (await res.json()) as Record<string, unknown> }
}

/**
 * For a test file: returns `start(options)`, which starts a server that the
 * next `afterEach` disposes (every server the test started, and its directory).
 */
export function useServer(): (options?: Partial<ServerOptions>) => Promise<TestServer> {
  const started: TestServer[] = []
  afterEach(async () => {
    await Promise.all(started.splice(0).map((s) => s.dispose()))
  })
  return async (options) => {
    const s = await startServer(options)
    started.push(s)
    return s
  }
}

/**
 * POSTs to `path` a body that never arrives whole: its first bytes (`start`)
 * under a content-length it never reaches. Resolves with the answer.
 */
export function trickledPost(
  port: number,
  path: string,
  headers: Record<string, string>,
  start: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'content-length': 1000 },
      },
      (r) => {
        let text = ''
        r.on('data', (d: Buffer) => {
          text += d.toString()
        })
        r.on('end', () => resolve({ status: r.statusCode ?? 0, json: JSON.parse(text) }))
      },
    )
    req.on('error', reject)
    req.write(start) // and nothing more
  })
}

/** Writes `request` on a raw socket: what came back, and whether the server closed the socket within `waitMs`. */
export function exchange(socket: Duplex, request: string, waitMs: number): Promise<{ answer: string; closed: boolean }> {
  return new Promise((resolve) => {
    let answer = ''
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1')
    })
    socket.on('error', () => {})
    const timer = setTimeout(() => {
      socket.destroy()
      resolve({ answer, closed: false })
    }, waitMs)
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ answer, closed: true })
    })
    socket.write(request)
  })
}
