/**
 * A mock-socket server for unit tests of the client's reactions to server
 * frames and close codes, under fake timers. mock-socket delivers every event
 * on a 4 ms timer, so advance time ({@link tick}) after each step.
 *
 * ```
 * test ──► MockServer ── mock-socket bridge ──► NotificationClient (transport: class Hooked extends MockWebSocket)
 *           peers[i].frames: what the client sent on connection i
 *           peers[i].send / close: what the server does
 * ```
 */
import { type Client, WebSocket as MockWebSocket, Server } from 'mock-socket'
import { vi } from 'vitest'
import {
  type BelfryError,
  type ClientOptions,
  type Notification,
  NotificationClient,
  type ReadEvent,
  type StatusEvent,
} from '../../src/index.js'

/** A frame the client sent, parsed. */
export type Frame = { type: string } & Record<string, unknown>

/** One connection, seen from the server. */
export interface Peer {
  readonly index: number
  /** Frames received from the client on this connection, in order. */
  readonly frames: Frame[]
  /** The client's side is closed (by the client or the server). */
  readonly closed: boolean
  send(frame: object | string): void
  /** Closes from the server side with a close code; reaches the client 4 ms later. */
  close(code: number, reason?: string): void
  /** Answers the auth frame with `auth_success`. */
  authSuccess(fields?: AuthFields): void
}

/** How the server answers an auth frame. */
export type AuthReply = AuthFields | ((peer: Peer, auth: Frame) => void) | false

/** `auth_success` fields a test sets (`pingAcks`: the server acks by its heartbeat). */
export type AuthFields = { seq?: number; unreadCount?: number; pingAcks?: boolean }

export interface MockServerOptions {
  /** @default { seq: 0, unreadCount: 0 } */
  auth?: AuthReply
  /** Answer each ping with a pong. @default true */
  pong?: boolean
}

export interface MockServer {
  readonly url: string
  readonly peers: Peer[]
  /** The latest connection. */
  readonly peer: Peer
  /** Frames of one type the client sent, over all connections. */
  sent(type: string): Frame[]
  stop(): void
}

let serial = 0
const stops: (() => void)[] = []

/** Starts a mock server on a URL of its own (mock-socket's registry is global). */
export function startMockServer(options: MockServerOptions = {}): MockServer {
  const { auth = {}, pong = true } = options
  const url = `ws://belfry-${++serial}.test/ws`
  const server = new Server(url, { mock: false })
  const peers: Peer[] = []

  server.on('connection', (socket: Client) => {
    const peer: Peer = {
      index: peers.length,
      frames: [],
      get closed() {
        return socket.readyState >= MockWebSocket.CLOSING
      },
      send: (frame) => socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
      close: (code, reason = '') => socket.close({ code, reason, wasClean: true }),
      authSuccess: ({ seq = 0, unreadCount = 0, pingAcks } = {}) =>
        peer.send({ type: 'auth_success', message: 'ok', userId: 'u1', seq, unreadCount, ...(pingAcks && { pingAcks }) }),
    }
    peers.push(peer)
    socket.on('message', (data) => {
      const frame = JSON.parse(String(data)) as Frame
      peer.frames.push(frame)
      if (frame.type === 'ping' && pong) peer.send({ type: 'pong' })
      if (frame.type !== 'auth' || auth === false) return
      if (typeof auth === 'function') auth(peer, frame)
      else peer.authSuccess(auth)
    })
  })

  const stop = () => server.stop()
  stops.push(stop)
  return {
    url,
    peers,
    get peer() {
      const last = peers.at(-1)
      if (!last) throw new Error('no connection yet')
      return last
    },
    sent: (type) => peers.flatMap((p) => p.frames.filter((f) => f.type === type)),
    stop,
  }
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

/** A JWT-shaped token (not signed: the mock server does not verify it) whose `sub` keys the client's cursor. */
export function jwt(sub = 'u1', extra: Record<string, unknown> = {}): string {
  return `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub, ...extra })}.sig`
}

/** A notification frame with seq `seq`. */
export function note(seq: number, extra: Partial<Notification> = {}): Frame {
  return {
    type: 'notification',
    id: `n${seq}`,
    seq,
    title: `title ${seq}`,
    body: '',
    priority: 'medium',
    timestamp: '2024-01-01T00:00:00.000Z',
    read: false,
    ...extra,
  }
}

/** Everything a client emitted, in order. */
export interface Recorded {
  statuses: StatusEvent[]
  /** Fake-clock time (Date.now()) of each status event. */
  statusTimes: number[]
  errors: BelfryError[]
  notifications: Notification[]
  reads: ReadEvent[]
  unread: number[]
}

export function record(client: NotificationClient): Recorded {
  const log: Recorded = { statuses: [], statusTimes: [], errors: [], notifications: [], reads: [], unread: [] }
  client.on('status', (e) => {
    log.statuses.push(e)
    log.statusTimes.push(Date.now())
  })
  client.on('error', (e) => log.errors.push(e))
  client.on('notification', (n) => log.notifications.push(n))
  client.on('read', (e) => log.reads.push(e))
  client.on('unread', (e) => log.unread.push(e.count))
  return log
}

export interface TestClient {
  client: NotificationClient
  log: Recorded
  /** Tokens handed out by the default token function, in order (each distinct). */
  tokens: string[]
}

const clients: NotificationClient[] = []

/**
 * A client of `server` over mock-socket: a token function that yields a fresh
 * token for user u1 on each call, storage in memory, random fixed at 0.5 (so
 * the first retry waits 250 ms). Overrides win.
 */
export function createClient(server: MockServer, overrides: Partial<ClientOptions> = {}): TestClient {
  const tokens: string[] = []
  const client = new NotificationClient({
    url: server.url,
    token: () => {
      const token = jwt('u1', { n: tokens.length + 1 })
      tokens.push(token)
      return token
    },
    WebSocket: MockWebSocket,
    storage: false,
    random: () => 0.5,
    ...overrides,
  })
  clients.push(client)
  return { client, log: record(client), tokens }
}

/** Lets mock-socket's 4 ms hops, reconnecting-websocket's 0 ms wait and the promises between them run. */
export const tick = (ms = 20) => vi.advanceTimersByTimeAsync(ms)

/** Advances the fake clock to `ms` after the latest status event. */
export function advanceToAfterStatus(log: Recorded, ms: number): Promise<unknown> {
  const last = log.statusTimes.at(-1)
  if (last === undefined) throw new Error('no status event yet')
  return vi.advanceTimersByTimeAsync(last + ms - Date.now())
}

/** Connects and waits until online. */
export async function connected(t: TestClient): Promise<TestClient> {
  t.client.connect()
  await tick()
  if (t.client.state !== 'online') throw new Error(`expected online, got ${t.client.state}`)
  return t
}

/** For afterEach: closes every client, stops every server, restores timers and globals. */
export function cleanup(): void {
  for (const client of clients.splice(0)) client.close()
  for (const stop of stops.splice(0)) stop()
  vi.useRealTimers()
  vi.unstubAllGlobals()
  vi.restoreAllMocks()
}

/** Settles into a value either way, so a rejection is never unhandled and can be inspected later. */
export function outcome<T>(promise: Promise<T>) {
  const state: { done: boolean; value?: T; error?: unknown } = { done: false }
  promise.then(
    (value) => Object.assign(state, { done: true, value }),
    (error: unknown) => Object.assign(state, { done: true, error }),
  )
  return state
}
