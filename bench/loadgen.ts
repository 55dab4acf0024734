/**
 * A load generator: one process holding a share of the bench's clients,
 * driven by run.ts over IPC. It connects them, records when each message
 * arrives (on the monotonic clock the server child stamps payloads with),
 * counts what is missing or doubled, and reports.
 *
 * Clients by kind:
 * - `belfry`: a raw `ws` socket speaking belfry's protocol as its client does
 *   (auth with `since`, follows `replayed {more}` with `resume`, drops seq ≤
 *   cursor, acks on close; to a server whose `auth_success` has no `pingAcks`,
 *   a cumulative ack a second after a delivery too: belfry's server acks by
 *   the pongs of its heartbeat, which `ws` answers by itself);
 * - `ws`: a raw `ws` socket speaking the article's protocol, reconnecting with
 *   the same full-jitter backoff as belfry's client;
 * - `socketio`: socket.io-client, WebSocket transport only, its own reconnection;
 * - `belfry-client`: belfry's NotificationClient itself (for the storm and the replay).
 */
import { io, type Socket } from 'socket.io-client'
import WebSocket from 'ws'
import { type CursorStorage, memoryStorage, NotificationClient } from '../src/index.js'
import { mintToken } from '../src/server/index.js'
import { now, serve } from './rpc.js'
import { type BenchData, SECRET } from './shared.js'

export type ClientKind = 'belfry' | 'ws' | 'socketio' | 'belfry-client'

/** One client of any kind, as the bench sees it. */
interface Client {
  readonly user: string
  online: boolean
  /** When it last came online. */
  onlineAt: number
  /** Keys received, with the time each arrived (a key seen twice is a duplicate). */
  readonly seen: Map<string, number>
  /** Failed connection attempts, and why (reset by `closeAll`). */
  retries: number
  close(): void
}

/** Why reconnection attempts failed, counted over all clients here. */
let retryReasons = new Map<string, number>()
const retried = (client: Client, reason: string) => {
  client.retries++
  retryReasons.set(reason, (retryReasons.get(reason) ?? 0) + 1)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

// ---- what this process has seen --------------------------------------------

let clients: Client[] = []
/** Broadcast and storm keys: how many clients got each, first and last arrival. */
let received = new Map<string, { count: number; first: number; last: number }>()
/** Targeted messages (`t…`): publish → receipt, in ms. */
let latencies: number[] = []
let targeted = 0
/** Handed to the app twice (same key on one client). */
let duplicates = 0
/** Notification frames at or below the client's cursor: dropped by the client, as designed. */
let wireDuplicates = 0
/** Notifications handed over (any key, each once per client), and when the latest arrived. */
let deliveries = 0
let lastAt = 0

function record(client: Client, data: BenchData | undefined, at: number): void {
  if (!data || typeof data.k !== 'string') return
  const { k } = data
  if (client.seen.has(k)) {
    duplicates++
    return
  }
  client.seen.set(k, at)
  deliveries++
  if (at > lastAt) lastAt = at
  if (k[0] === 't') {
    targeted++
    latencies.push(at - data.t)
    return
  }
  const r = received.get(k)
  if (r) {
    r.count++
    if (at > r.last) r.last = at
    if (at < r.first) r.first = at
  } else {
    received.set(k, { count: 1, first: at, last: at })
  }
}

// ---- raw ws clients ----------------------------------------------------------

const BACKOFF = { initial: 500, factor: 2, max: 30_000, minUptime: 5000 }

class RawClient implements Client {
  online = false
  onlineAt = 0
  retries = 0
  readonly seen = new Map<string, number>()
  #ws: WebSocket | undefined
  #cursor = 0
  #acked = 0
  /** The server acks by its heartbeat (`auth_success.pingAcks`): no timed acks. */
  #pingAcks = false
  #ackTimer: NodeJS.Timeout | undefined
  #retryTimer: NodeJS.Timeout | undefined
  #uptimeTimer: NodeJS.Timeout | undefined
  #attempt = 0
  #closed = false

  constructor(
    readonly kind: 'belfry' | 'ws',
    readonly url: string,
    readonly user: string,
    readonly token: string,
    readonly reconnect: boolean,
  ) {}

  /** Opens one socket; resolves once live, rejects if it closes first. */
  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, { perMessageDeflate: false })
      this.#ws = ws
      let live = false
      const up = () => {
        if (live) return
        live = true
        this.online = true
        this.onlineAt = now()
        this.#uptimeTimer = setTimeout(() => {
          this.#attempt = 0
        }, BACKOFF.minUptime)
        resolve()
      }
      ws.on('open', () => {
        const auth =
          this.kind === 'belfry'
            ? { type: 'auth', token: this.token, userId: this.user, since: this.#cursor }
            : { type: 'auth', token: 'none', userId: this.user }
        ws.send(JSON.stringify(auth))
      })
      ws.on('message', (raw) => {
        const at = now()
        const f = JSON.parse(raw.toString()) as { type: string; seq?: number; more?: boolean; pingAcks?: boolean; data?: BenchData }
        if (f.type === 'notification') {
          if (this.kind === 'belfry') {
            if (f.seq! <= this.#cursor) {
              wireDuplicates++
              return
            }
            this.#cursor = f.seq!
            if (!this.#pingAcks) this.#ackTimer ??= setTimeout(() => this.#ack(), 1000)
          }
          record(this, f.data, at)
        } else if (f.type === 'replayed') {
          if (f.more) ws.send(JSON.stringify({ type: 'resume', since: this.#cursor }))
          else up()
        } else if (f.type === 'auth_success') {
          if (this.kind === 'ws') up()
          else this.#pingAcks = f.pingAcks === true
        }
      })
      ws.on('error', () => {})
      ws.on('close', (code) => {
        this.online = false
        clearTimeout(this.#uptimeTimer)
        clearTimeout(this.#ackTimer)
        this.#ackTimer = undefined
        if (!live) reject(new Error(`closed ${code} before going live`))
        if (this.reconnect && !this.#closed) {
          if (!live) retried(this, `close ${code}`)
          this.#retry()
        }
      })
    })
  }

  #retry(): void {
    const delay = Math.random() * Math.min(BACKOFF.max, BACKOFF.initial * BACKOFF.factor ** this.#attempt)
    this.#attempt++
    this.#retryTimer = setTimeout(() => this.open().catch(() => {}), delay)
  }

  #ack(): void {
    this.#ackTimer = undefined
    if (this.#cursor > this.#acked && this.#ws?.readyState === WebSocket.OPEN) {
      this.#ws.send(JSON.stringify({ type: 'ack', seq: this.#cursor }))
      this.#acked = this.#cursor
    }
  }

  close(): void {
    this.#closed = true
    clearTimeout(this.#retryTimer)
    clearTimeout(this.#ackTimer)
    if (this.kind === 'belfry') this.#ack() // as belfry's client does on close()
    clearTimeout(this.#uptimeTimer)
    this.#ws?.close(1000)
  }
}

// ---- socket.io ---------------------------------------------------------------

class SocketIoClient implements Client {
  online = false
  onlineAt = 0
  retries = 0
  readonly seen = new Map<string, number>()
  readonly #socket: Socket

  constructor(
    url: string,
    readonly user: string,
  ) {
    this.#socket = io(url, { transports: ['websocket'], auth: { userId: user }, forceNew: true, autoConnect: false })
    this.#socket.on('notification', (n: { data?: BenchData }) => record(this, n.data, now()))
    this.#socket.on('connect', () => {
      this.online = true
      this.onlineAt = now()
    })
    this.#socket.on('disconnect', () => {
      this.online = false
    })
    this.#socket.io.on('reconnect_error', (e) => retried(this, e.message))
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#socket.once('connect', () => resolve())
      this.#socket.once('connect_error', (e) => reject(e))
      this.#socket.connect()
    })
  }

  close(): void {
    this.#socket.disconnect()
  }
}

// ---- belfry's NotificationClient -----------------------------------------------

/** ws, counting the notification frames the client will drop as already seen. */
function countingWebSocket(cursor: { max: number }): new (url: string, protocols?: string | string[]) => WebSocket {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols)
      this.addEventListener('message', (e) => {
        const text = String(e.data)
        if (!text.startsWith('{"type":"notification"')) return
        const seq = Number(/"seq":(\d+)/.exec(text)?.[1])
        if (seq <= cursor.max) wireDuplicates++
        else cursor.max = seq
      })
    }
  }
}

class BelfryClient implements Client {
  online = false
  onlineAt = 0
  retries = 0
  /** Status changes since the last reset: ms on the shared clock, state, reason, retryIn. */
  trace: string[] = []
  readonly seen = new Map<string, number>()
  readonly client: NotificationClient<BenchData>
  /** Every notification handed to the app, by seq (for the replay check). */
  delivered = 0
  lastSeq = 0

  constructor(
    url: string,
    readonly user: string,
    token: string,
    storage: CursorStorage,
  ) {
    const cursor = { max: 0 }
    this.client = new NotificationClient<BenchData>({ url, token: () => token, WebSocket: countingWebSocket(cursor), storage })
    this.client.on('notification', (n) => {
      this.delivered++
      this.lastSeq = n.seq
      record(this, n.data, now())
    })
    this.client.on('status', ({ from, to, reason, retryIn }) => {
      this.trace.push(`${Math.round(now())} ${to} (${reason}${retryIn === undefined ? '' : `, retry in ${Math.round(retryIn)}`})`)
      this.online = to === 'online'
      if (this.online) this.onlineAt = now()
      if (to === 'reconnecting' && from !== 'online') retried(this, reason)
    })
  }

  open(): Promise<void> {
    this.client.connect()
    return this.client.ready()
  }

  close(): void {
    this.client.close()
  }
}

// ---- commands ----------------------------------------------------------------

/** Runs `fn` over `items` with at most `width` in flight. */
async function pool<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!)
  }
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane))
}

async function waitUntil(check: () => boolean, timeoutMs: number, everyMs = 5): Promise<boolean> {
  const end = now() + timeoutMs
  while (!check()) {
    if (now() > end) return false
    await sleep(everyMs)
  }
  return true
}

/** Cursors of belfry-client users, kept across clients as a browser's localStorage would be (so not `volatile`). */
const storage: CursorStorage = { ...memoryStorage(), volatile: false }
let replayClient: BelfryClient | undefined

serve({
  /** Connects one client per user, `window` at a time; resolves when all are live (or failed). */
  async connect(args: { kind: ClientKind; url: string; users: string[]; window: number }) {
    const tokens =
      args.kind === 'belfry' || args.kind === 'belfry-client' ? await Promise.all(args.users.map((u) => mintToken(SECRET, u))) : []
    const made: (Client & { open(): Promise<void> })[] = args.users.map((user, i) => {
      if (args.kind === 'socketio') return new SocketIoClient(args.url, user)
      if (args.kind === 'belfry-client') return new BelfryClient(args.url, user, tokens[i]!, storage)
      return new RawClient(args.kind, args.url, user, tokens[i] ?? '', true)
    })
    clients.push(...made)
    let failed = 0
    const errors = new Set<string>()
    const t0 = now()
    await pool(made, args.window, async (c) => {
      try {
        await c.open()
      } catch (error) {
        failed++
        errors.add(error instanceof Error ? error.message : String(error))
      }
    })
    return { t0, t1: now(), failed, errors: [...errors].slice(0, 3) }
  },

  /** Waits until every client here has each key (or the time is up). */
  async waitKeys(args: { keys: string[]; timeoutMs: number }) {
    const want = clients.length
    await waitUntil(() => args.keys.every((k) => (received.get(k)?.count ?? 0) >= want), args.timeoutMs)
    return Object.fromEntries(args.keys.map((k) => [k, received.get(k) ?? { count: 0, first: 0, last: 0 }]))
  },

  /** Targeted messages received so far; `drain` hands over (and forgets) the latencies. */
  stream(args: { drain?: boolean }) {
    const out = { targeted, duplicates, wireDuplicates, latencies: args.drain ? latencies : [] }
    if (args.drain) latencies = []
    return out
  },

  /** Every notification handed over so far (each client's first copy of a key), and when the latest arrived. */
  tally() {
    return { deliveries, lastAt, duplicates }
  },

  /**
   * After a server restart at `t0`: waits until every client is back online
   * (and, with `keys`, has each of them), then says when that was, per client
   * the latest of coming back and receiving the last key it lacked.
   */
  async storm(args: { t0: number; keys: string[]; timeoutMs: number }) {
    const back = (c: Client) => c.online && c.onlineAt > args.t0
    const caughtUp = (c: Client) => back(c) && args.keys.every((k) => c.seen.has(k))
    await waitUntil(() => clients.every(caughtUp), args.timeoutMs, 10)
    let allBack = 0
    let allCaughtUp = 0
    let lost = 0
    let stillAway = 0
    for (const c of clients) {
      if (back(c)) allBack = Math.max(allBack, c.onlineAt)
      else stillAway++
      let done = back(c) ? c.onlineAt : 0
      for (const k of args.keys) {
        const at = c.seen.get(k)
        if (at === undefined) lost++
        else done = Math.max(done, at)
      }
      allCaughtUp = Math.max(allCaughtUp, done)
    }
    const retries = clients.map((c) => c.retries)
    const slowest = clients.reduce<Client | undefined>((a, c) => (a === undefined || c.onlineAt > a.onlineAt ? c : a), undefined)
    return {
      slowest:
        slowest instanceof BelfryClient
          ? slowest.trace.map((l) => l.replace(/^(\d+)/, (t) => String(Number(t) - Math.round(args.t0))))
          : [],
      clients: clients.length,
      allBack,
      allCaughtUp,
      lost,
      stillAway,
      duplicates,
      wireDuplicates,
      retries: { total: retries.reduce((a, b) => a + b, 0), max: Math.max(0, ...retries), reasons: Object.fromEntries(retryReasons) },
    }
  },

  /** Forgets the failed attempts so far (before a restart). */

  resetRetries() {
    for (const c of clients) {
      c.retries = 0
      if (c instanceof BelfryClient) c.trace = []
    }
    retryReasons = new Map()
    return { ok: true }
  },

  /** Closes every client (no reconnects) and forgets everything recorded. */
  async closeAll() {
    for (const c of clients) c.close()
    await sleep(200)
    clients = []
    retryReasons = new Map()
    received = new Map()
    latencies = []
    targeted = 0
    duplicates = 0
    wireDuplicates = 0
    deliveries = 0
    lastAt = 0
    return { ok: true }
  },

  /** Replay, step 1: a NotificationClient for `user` comes online. */
  async replayOpen(args: { url: string; user: string }) {
    replayClient = new BelfryClient(args.url, args.user, await mintToken(SECRET, args.user), storage)
    await replayClient.open()
    return { ok: true }
  },

  /** Replay, step 2: it receives `k`, then goes away (acking what it has). */
  async replayLeave(args: { k: string; timeoutMs: number }) {
    const c = replayClient!
    const got = await waitUntil(() => c.seen.has(args.k), args.timeoutMs)
    c.close()
    await sleep(200)
    return { got, seq: c.lastSeq }
  },

  /** Replay, step 3: a new client with the same stored cursor comes back; time until `count` more have arrived. */
  async replayReturn(args: { url: string; user: string; count: number; timeoutMs: number }) {
    const token = await mintToken(SECRET, args.user)
    const before = duplicates
    const c = new BelfryClient(args.url, args.user, token, storage)
    const t0 = now()
    c.client.connect()
    const done = await waitUntil(() => c.delivered >= args.count, args.timeoutMs, 2)
    const ms = now() - t0
    // A moment more, to see whether anything arrives twice or beyond the backlog.
    await sleep(300)
    c.close()
    return { ms, done, delivered: c.delivered, lastSeq: c.lastSeq, duplicates: duplicates - before }
  },
})
