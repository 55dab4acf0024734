import { randomBytes } from 'node:crypto'
import type { Logger } from 'pino'
import WebSocket from 'ws'
import {
  type AuthFrame,
  type ClientFrame,
  CloseCode,
  ErrorCode,
  type HistoryFrame,
  type MarkReadFrame,
  parseClientFrame,
  retryReason,
  type ServerFrame,
} from '../../protocol/index.js'
import { verifyToken } from '../auth.js'
import type { Broker } from '../broker/broker.js'
import type { Limits } from '../options.js'
import { TokenBucket } from '../rate-limit.js'
import type { Registry } from '../registry.js'
import { frame, historyFrame, replayFrame } from '../serialize.js'
import type { Store } from '../store/store.js'

/** What every connection shares: the server's parts. */
export interface Hub {
  readonly store: Store
  readonly broker: Broker
  readonly registry: Registry
  /** Every open socket's connection, authenticated or not. */
  readonly connections: Set<Connection>
  /** Those still waiting for their auth frame, oldest first. */
  readonly unauthenticated: Set<Connection>
  readonly limits: Readonly<Limits>
  readonly key: Uint8Array
  readonly log: Logger
}

/**
 * - `authenticating`: waiting for a valid `auth` frame.
 * - `replaying`: authenticated; stored notifications are being sent, live ones
 *   are held back (they are in the store and the replay picks them up).
 * - `live`: caught up; new notifications are sent as they are published.
 * - `closed`: the socket is closing or closed.
 */
export type ConnectionState = 'authenticating' | 'replaying' | 'live' | 'closed'

const DEFAULT_HISTORY_LIMIT = 20
/** Send options: a Buffer goes out as a text frame too. One object, not one per send. */
const TEXT = { binary: false } as const
/** Shared start of every connection's frame queue (one settled promise, not one per socket). */
const SETTLED: Promise<void> = Promise.resolve()
/** Connection ids: a random tag per process and a counter, unique across processes sharing a broker. */
const PROCESS_TAG = randomBytes(6).toString('base64url')
let connections = 0
/** How often the server asks a client that does not ack how far it has read (see #implicit). */
const IMPLICIT_ACK_MS = 1000
/** How long a slow consumer has to read its close frame before the socket is destroyed. */
const SLOW_CONSUMER_GRACE_MS = 5000

/** The socket's connection, kept on the socket for the shared listeners. */
const OWNER = Symbol('belfry connection')
type Owned = WebSocket & { [OWNER]: Connection }
const owner = (ws: WebSocket): Connection => (ws as Owned)[OWNER]

/** One client socket: its auth, its frames, its replay cursor and its limits. */
export class Connection {
  /** Unique across processes; marks the origin of read changes. */
  readonly id = `${PROCESS_TAG}${++connections}`
  state: ConnectionState = 'authenticating'
  userId: string | undefined
  /** True while a WebSocket ping is unanswered. */
  awaitingPong = false
  /** Highest seq sent on this socket: live delivery continues from here. */
  #sentSeq = 0
  /** Highest seq announced by the broker while not live. */
  #pendingMax = 0
  #badFrames = 0
  /** Frames are handled one at a time, in order (auth completes before the next frame). */
  #queue: Promise<void> = SETTLED
  #authTimer: NodeJS.Timeout | undefined
  /**
   * The auth frame had no `since`: a client of the article's protocol, which
   * neither asks for the next replay round nor acks. The server does both for
   * it: rounds follow each other once the socket has taken the last one, and
   * what the client has received counts as delivered (the article's "deliver
   * on reconnect"): a WebSocket ping carries the seq sent before it, and its
   * pong, which the client's WebSocket sends after receiving everything before
   * the ping, acks it.
   */
  #implicit = false
  #ackTimer: NodeJS.Timeout | undefined
  /** The seq the unanswered ack ping carries; only its pong acks (one store write per ping, none for forged pongs). */
  #pingedSeq = 0
  /** When the token expires (ms since the epoch); the server's sweep closes the connection then. */
  expiresAt = Number.POSITIVE_INFINITY
  readonly #bucket: TokenBucket

  constructor(
    readonly ws: WebSocket,
    readonly hub: Hub,
  ) {
    this.#bucket = new TokenBucket(hub.limits.ratePerSecond, hub.limits.rateBurst)
    hub.connections.add(this)
    hub.unauthenticated.add(this)
    this.#authTimer = setTimeout(() => this.close(CloseCode.AuthTimeout, 'auth timeout'), hub.limits.authTimeoutMs)
    // Listeners shared by every socket (`this` is the socket): no closures per connection.
    ;(ws as Owned)[OWNER] = this
    ws.on('message', onMessage)
    ws.on('pong', onPong)
    ws.on('close', onClose)
    ws.on('error', onError)
  }

  /**
   * Sends one serialised frame; a client that lets its buffer grow past the
   * bound is cut off. `written` runs once the frame is handed to the OS (or
   * could not be).
   */
  send(data: string | Buffer, written?: () => void): void {
    if (this.ws.readyState !== WebSocket.OPEN) {
      written?.()
      return
    }
    this.ws.send(data, TEXT, written)
    if (this.ws.bufferedAmount > this.hub.limits.maxBufferedBytes) {
      this.hub.log.warn({ conn: this.id, user: this.userId, buffered: this.ws.bufferedAmount }, 'slow consumer')
      this.close(CloseCode.SlowConsumer, 'slow consumer')
    }
  }

  /** Closes with a code and a short reason (RFC 6455 §5.5: at most 123 bytes). */
  close(code: number, reason: string): void {
    if (this.state === 'closed') return
    this.#dispose()
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, reason)
    if (code === CloseCode.SlowConsumer) {
      // A client that does not read will not read the close frame either: free its buffer soon,
      // not after ws's 30 s close timeout.
      setTimeout(() => this.ws.terminate(), SLOW_CONSUMER_GRACE_MS).unref()
    }
  }

  /**
   * A notification for this connection's user, from the broker. Sent at once
   * when live and next in line; held back while replaying; a gap (an event
   * overtaken by another) sends the connection back to the store to catch up.
   */
  deliver(seq: number, data: string | Buffer): void {
    if (this.state === 'replaying') {
      this.#pendingMax = Math.max(this.#pendingMax, seq)
      return
    }
    if (this.state !== 'live' || seq <= this.#sentSeq) return
    if (seq === this.#sentSeq + 1) {
      this.#sentSeq = seq
      this.send(data)
      if (this.#implicit) this.#ackForClient()
      return
    }
    this.#pendingMax = seq
    this.state = 'replaying'
    this.#enqueue(() => this.#replayRound(undefined), true)
  }

  /** From the socket's shared `message` listener. */
  receive(data: WebSocket.RawData, isBinary: boolean): void {
    if (this.state === 'closed') return
    if (!this.#bucket.take()) {
      this.close(CloseCode.RateLimited, retryReason('rate limited', Math.max(1000, this.#bucket.retryMs)))
      return
    }
    if (isBinary) {
      this.#reject(ErrorCode.BinaryFrame, 'binary frames are not supported; send JSON text')
      return
    }
    const parsed = parseClientFrame(data.toString())
    if (!parsed.ok) {
      this.#reject(parsed.code, parsed.message, parsed.requestId)
      return
    }
    this.#badFrames = 0
    const f = parsed.frame
    this.#enqueue(() => this.#handle(f), f.type === 'auth' || f.type === 'resume', 'requestId' in f ? f.requestId : undefined)
  }

  /**
   * Runs a task after the ones before it. A failed task is answered with an
   * `internal` error (echoing the request's id, so that its promise settles
   * now); a failed auth or replay (`critical`) also closes with 1011, since the
   * connection would never go live: the client reconnects.
   */
  #enqueue(task: () => Promise<void>, critical = false, requestId?: string): void {
    this.#queue = this.#queue.then(task).catch((error: unknown) => {
      this.hub.log.error({ conn: this.id, err: error }, 'frame handler failed')
      this.#reply({ type: 'error', code: ErrorCode.Internal, message: 'internal error', ...rid(requestId) })
      if (critical) this.close(CloseCode.InternalError, 'internal error')
    })
  }

  /** Answers a bad frame with an error; too many in a row close the connection. */
  #reject(code: ErrorCode, message: string, requestId?: string): void {
    this.#reply({ type: 'error', code, message, ...rid(requestId) })
    this.#badFrames += 1
    if (this.#badFrames >= this.hub.limits.maxBadFrames) this.close(CloseCode.ProtocolViolation, 'too many bad frames')
  }

  #reply(f: ServerFrame): void {
    this.send(frame(f))
  }

  async #handle(f: ClientFrame): Promise<void> {
    if (this.state === 'closed') return
    if (f.type === 'auth') return this.#auth(f)
    if (this.state === 'authenticating') {
      this.#reject(ErrorCode.NotAuthenticated, 'send an auth frame first', 'requestId' in f ? f.requestId : undefined)
      return
    }
    const userId = this.userId!
    const { store } = this.hub
    switch (f.type) {
      case 'ack':
        await store.ack(userId, f.seq)
        return
      case 'resume': {
        // Clamped as at auth: a cursor past the latest seq would hold back every later notification.
        const { latestSeq } = await store.touchUser(userId)
        if (this.#closed()) return
        this.#sentSeq = Math.min(f.since, latestSeq)
        this.state = 'replaying'
        return this.#replayRound(f.requestId)
      }
      case 'mark_read':
        return this.#markRead(f)
      case 'subscribe':
      case 'unsubscribe':
        await (f.type === 'subscribe' ? store.subscribe(userId, f.topic) : store.unsubscribe(userId, f.topic))
        this.#reply({ type: f.type === 'subscribe' ? 'subscribed' : 'unsubscribed', topic: f.topic, ...rid(f.requestId) })
        return
      case 'history':
        return this.#history(f)
      case 'ping':
        this.#reply({ type: 'pong', ...rid(f.requestId) })
        return
    }
  }

  async #auth(f: AuthFrame): Promise<void> {
    if (this.state !== 'authenticating') {
      this.#reject(ErrorCode.AlreadyAuthenticated, 'this connection is already authenticated')
      return
    }
    const check = await verifyToken(f.token, this.hub.key)
    if (this.#closed()) return
    if (!check.ok) {
      const code = check.expired ? ErrorCode.TokenExpired : ErrorCode.TokenInvalid
      this.#reply({ type: 'auth_error', code, message: check.message })
      this.close(check.expired ? CloseCode.TokenExpired : CloseCode.TokenInvalid, check.message)
      return
    }
    if (f.userId !== undefined && f.userId !== check.userId) {
      this.#reply({ type: 'auth_error', code: ErrorCode.Forbidden, message: 'userId does not match the token' })
      this.close(CloseCode.Forbidden, 'user mismatch')
      return
    }
    const { registry, limits, store } = this.hub
    if (registry.count(check.userId) >= limits.maxConnectionsPerUser) {
      this.#reply({ type: 'auth_error', code: ErrorCode.RateLimited, message: 'too many connections for this user' })
      this.close(CloseCode.RateLimited, retryReason('too many connections', 30_000))
      return
    }
    clearTimeout(this.#authTimer)
    this.#authTimer = undefined // holds its closure otherwise, for the life of the connection
    this.userId = check.userId
    this.#implicit = f.since === undefined
    this.state = 'replaying'
    this.hub.unauthenticated.delete(this)
    registry.add(check.userId, this)
    this.expiresAt = check.expiresAt
    const user = await store.touchUser(check.userId)
    if (this.#closed()) return
    // `since: 0` (or none) is no cursor: everything after the user's acknowledged one.
    // A cursor beyond the latest seq comes from another database: start from the end.
    this.#sentSeq = Math.min(f.since || user.ackedSeq, user.latestSeq)
    this.#reply({
      type: 'auth_success',
      message: 'Connected to notification service',
      userId: check.userId,
      seq: user.latestSeq,
      unreadCount: user.unreadCount,
    })
    this.hub.log.debug({ conn: this.id, user: check.userId, since: this.#sentSeq }, 'authenticated')
    return this.#replayRound(undefined)
  }

  /**
   * Sends one round of stored notifications after the cursor. With more
   * waiting than a round holds, the client asks for the next with `resume`;
   * otherwise the connection goes live in the same tick as its last read, so
   * nothing published in between is lost or sent twice.
   */
  async #replayRound(requestId: string | undefined): Promise<void> {
    const { store, limits } = this.hub
    const userId = this.userId!
    for (;;) {
      const rows = await store.after(userId, this.#sentSeq, limits.replayBatch + 1)
      if (this.#closed()) return
      // A round is bounded by count and by bytes: the client asks for the next one only after
      // reading this one, so the send buffer never holds more than half its bound of replay.
      let more = rows.length > limits.replayBatch
      let bytes = 0
      for (const row of more ? rows.slice(0, limits.replayBatch) : rows) {
        if (bytes >= limits.maxBufferedBytes / 2) {
          more = true
          break
        }
        const data = replayFrame(row)
        bytes += Buffer.byteLength(data)
        this.send(data)
        if (this.#closed()) return // cut off as a slow consumer
        this.#sentSeq = row.seq
      }
      if (more) {
        if (!this.#implicit) {
          this.#reply({ type: 'replayed', more: true, seq: this.#sentSeq, ...rid(requestId) })
          return
        }
        // The client will not ask: send the next round once the socket has taken this one.
        await new Promise<void>((resolve) => this.send(frame({ type: 'replayed', more: true, seq: this.#sentSeq }), resolve))
        if (this.#closed()) return
        this.#ackForClient()
        continue
      }
      // Published while the read was in flight: read again before going live.
      if (this.#pendingMax > this.#sentSeq) continue
      this.state = 'live'
      this.#reply({ type: 'replayed', more: false, seq: this.#sentSeq, ...rid(requestId) })
      if (this.#implicit) this.#ackForClient()
      return
    }
  }

  async #markRead(f: MarkReadFrame): Promise<void> {
    const userId = this.userId!
    const change = await this.hub.store.markRead(userId, f.all ? 'all' : (f.ids ?? []))
    const { ids, all, seq, unreadCount } = change
    this.#reply({ type: 'read', ids, all, seq, unreadCount, ...rid(f.requestId) })
    if (all || ids.length > 0) {
      // Committed and answered: a failing broker only keeps the other tabs from hearing of it now.
      try {
        await this.hub.broker.publish([
          { kind: 'read', userId, origin: this.id, frame: frame({ type: 'read', ids, all, seq, unreadCount }) },
        ])
      } catch (error) {
        this.hub.log.error({ conn: this.id, err: error }, 'broker publish failed')
      }
    }
  }

  /** One page, newest first, cut short (with `next`) before it takes more than a replay round's bytes. */
  async #history(f: HistoryFrame): Promise<void> {
    const limit = f.limit ?? DEFAULT_HISTORY_LIMIT
    const rows = await this.hub.store.history(this.userId!, f.before, limit)
    if (this.#closed()) return
    // Each item is serialised once: to measure the page, and into the frame.
    const items: string[] = []
    let bytes = 0
    for (const n of rows) {
      const json = JSON.stringify(n)
      bytes += Buffer.byteLength(json)
      if (items.length > 0 && bytes > this.hub.limits.maxBufferedBytes / 2) break
      items.push(json)
    }
    const last = rows[items.length - 1]
    const next = (items.length < rows.length || items.length === limit) && last && last.seq > 1 ? { next: last.seq } : {}
    this.send(historyFrame(items, { ...next, ...rid(f.requestId) }))
  }

  /** For a client that does not ack: pings with the seq sent so far, at most once a second; the pong acks it. */
  #ackForClient(): void {
    if (this.#closed()) return
    this.#ackTimer ??= setTimeout(() => {
      this.#ackTimer = undefined
      if (this.ws.readyState !== WebSocket.OPEN) return
      this.#pingedSeq = this.#sentSeq
      this.ws.ping(String(this.#sentSeq))
    }, IMPLICIT_ACK_MS).unref()
  }

  /** From the socket's shared `pong` listener: the client is alive, and (see #implicit) has received up to the seq the ping carried. */
  pong(payload: Buffer): void {
    this.awaitingPong = false
    const seq = this.#pingedSeq
    if (seq === 0 || payload.toString() !== String(seq) || this.#closed()) return
    this.#pingedSeq = 0
    const { store, log } = this.hub
    store.ack(this.userId!, seq).catch((error: unknown) => log.warn({ conn: this.id, err: error }, 'ack failed'))
  }

  /** Called by the server's once-a-second sweep: closes with 4002 once the token has expired. */
  expireBy(now: number): void {
    if (now < this.expiresAt || this.state === 'closed') return
    this.#reply({ type: 'auth_error', code: ErrorCode.TokenExpired, message: 'token expired' })
    this.close(CloseCode.TokenExpired, 'token expired')
  }

  /** Re-reads the state after an await (the socket may have closed meanwhile). */
  #closed(): boolean {
    return this.state === 'closed'
  }

  /** Leaves the registry at once: a closing connection neither receives nor counts toward the cap. */
  #dispose(): void {
    this.hub.unauthenticated.delete(this)
    this.state = 'closed'
    clearTimeout(this.#authTimer)
    clearTimeout(this.#ackTimer)
    if (this.userId !== undefined) this.hub.registry.remove(this.userId, this)
  }

  /** From the socket's shared `close` listener: the socket is gone. */
  gone(): void {
    this.#dispose()
    this.hub.connections.delete(this)
  }
}

const rid = (requestId: string | undefined) => (requestId === undefined ? {} : { requestId })

// The sockets' listeners, one set for all (`this` is the socket).
function onMessage(this: WebSocket, data: WebSocket.RawData, isBinary: boolean): void {
  owner(this).receive(data, isBinary)
}
function onPong(this: WebSocket, payload: Buffer): void {
  owner(this).pong(payload)
}
function onClose(this: WebSocket): void {
  owner(this).gone()
}
function onError(this: WebSocket, error: Error): void {
  const c = owner(this)
  c.hub.log.debug({ conn: c.id, err: error }, 'socket error')
}
