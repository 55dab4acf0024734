import { randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import WebSocket from 'ws'
import { type ClientFrame, CloseCode, ErrorCode, parseClientFrame, retryReason, type ServerFrame } from '../../protocol/index.js'
import type { UserBudget } from '../budget.js'
import type { Hub } from '../hub.js'
import { frame, rid } from '../serialize.js'
import { authenticate } from './auth.js'
import { ImplicitAcks } from './implicit-ack.js'
import { Replay } from './replay.js'
import { handleFrame } from './requests.js'

/**
 * Where a connection is in its life; changed only by {@link Connection.moveTo}.
 *
 * ```
 *                  auth ok              caught up
 * authenticating ──────────► replaying ───────────► live
 *        │                     ▲   │                 │ a gap in live delivery
 *        │                     │   └── more: resume  │
 *        │                     └─────────────────────┘
 *        └── any ──► closed (bad auth, timeout, limits, socket gone)
 * ```
 *
 * - `authenticating`: waiting for a valid `auth` frame.
 * - `replaying`: authenticated; stored notifications are being sent, live ones
 *   are held back (they are in the store and the replay picks them up).
 * - `live`: caught up; new notifications are sent as they are published.
 * - `closed`: the socket is closing or closed; nothing more is sent or handled.
 */
export type ConnectionPhase = 'authenticating' | 'replaying' | 'live' | 'closed'

/** Send options: a Buffer goes out as a text frame too. One object, not one per send. */
const TEXT = { binary: false } as const
/** Shared start of every connection's frame queue (one settled promise, not one per socket). */
const SETTLED: Promise<void> = Promise.resolve()

/**
 * Requests one connection may have waiting in its queue (the one running
 * included); past it a request is answered `rate_limited` at once. A history
 * page waits there for the user's byte budget: a client asking within its
 * frame rate for pages faster than the budget pays for them would otherwise
 * pile up requests without end, every later frame behind them.
 */
export const MAX_QUEUED_REQUESTS = 64
/** Connection ids: a random tag per process and a counter, unique across processes sharing a broker. */
const PROCESS_TAG = randomBytes(6).toString('base64url')
let serial = 0
/**
 * How long a socket the server closed after auth (a slow consumer, a rate
 * limit, a protocol error, an expired token, a shutdown) has to answer its
 * close frame before it is destroyed, instead of ws's 30 s: the user's
 * connection cap no longer counts it, so a client that never answers would
 * otherwise hold sockets past the cap.
 */
const CLOSED_SOCKET_GRACE_MS = 5000
/**
 * How long a socket refused before auth (bad token, no auth in time, too many
 * bad frames) has to read its close frame before it is destroyed, instead of
 * ws's 30 s close handshake: such sockets would otherwise pile up.
 */
const REFUSED_GRACE_MS = 1000

const byteLength = (data: WebSocket.RawData): number =>
  Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data instanceof ArrayBuffer ? data.byteLength : data.length

/** The socket's connection, kept on the socket for the shared listeners. */
const OWNER = Symbol('belfry connection')
type Owned = WebSocket & { [OWNER]: Connection }
const owner = (ws: WebSocket): Connection => (ws as Owned)[OWNER]
const uncork = (socket: Duplex) => socket.uncork()

/**
 * One client socket: its phase, its frames (read, rate-limited, parsed and
 * handled one at a time), what it is sent, its heartbeat and its token's
 * expiry. What each frame does lives beside it: auth.ts (the auth frame),
 * replay.ts (replay rounds and live delivery), requests.ts (everything after
 * auth), implicit-ack.ts (acks for the article's client).
 */
export class Connection {
  /** Unique across processes; marks the origin of read changes. */
  readonly id = `${PROCESS_TAG}${++serial}`
  #phase: ConnectionPhase = 'authenticating'
  #userId: string | undefined
  /** The verified token's claims, kept only when subscriptions are authorized. */
  #claims: Readonly<Record<string, unknown>> | undefined
  /** When the token expires (ms since the epoch); {@link expireBy} closes the connection then. */
  #expiresAt = Number.POSITIVE_INFINITY
  /** The replay cursor and live delivery. */
  readonly replay: Replay = new Replay(this)
  /** Only for a client of the article's protocol, which does not ack (see implicit-ack.ts). */
  #acks: ImplicitAcks | undefined
  /** The announced replay round whose `resume` went free of the frame budget (see {@link #spend}). */
  #freeFor: number | undefined
  /** Full history pages sent whose next `history` request goes free of the frame budget (see {@link pagePaid}). */
  #pagePasses = 0
  #leaving = false
  /** `auth_success` has gone out ({@link greeted}). */
  #greeted = false
  /** A WebSocket ping is unanswered. */
  #awaitingPong = false
  /** The seq the latest ping carried (0: none): its pong acks it. */
  #pingedSeq = 0
  /** The highest seq known acked on this connection: a ping carries a seq only when more was sent since. */
  #pongAcked = 0
  /** The highest seq whose ack is written: the user's ack in the store covers it. */
  #written = 0
  /** Called when an ack's write ends (written or failed), or the socket is gone: see {@link leave}. */
  #acked: (() => void) | undefined
  /** Bad frames in a row (before auth, a frame that parses does not reset it: only auth does). */
  #badFrames = 0
  /** Frames received before auth: one is expected (the auth frame); past `maxBadFrames` the socket is closed. */
  #early = 0
  /** Frames are handled one at a time, in order (auth completes before the next frame). */
  #queue: Promise<void> = SETTLED
  /** Tasks in the queue, the running one included. */
  #queued = 0
  /** `resume` frames in the queue: one may wait past the queue's bound (a replay must not stall behind requests), no more. */
  #resumes = 0
  /**
   * Frames about the user's state (read changes) wait while this is above 0:
   * until `auth_success` has gone out, and while a replay round is on its way.
   */
  #holding = 1
  /** The frames {@link tell} held. */
  #held: (string | Buffer)[] | undefined
  #authTimer: NodeJS.Timeout | undefined

  constructor(
    readonly ws: WebSocket,
    readonly hub: Hub,
    /** The upgraded TCP socket under `ws`, corked by {@link Connection.cork}. */
    readonly socket?: Duplex,
  ) {
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

  get phase(): ConnectionPhase {
    return this.#phase
  }

  /**
   * A drain is closing it, once its ack is written ({@link leave}): nothing more goes out, live or in a replay
   * round, so that the ack can catch up with what was sent. What it is not sent, the process it reconnects to
   * replays.
   */
  get leaving(): boolean {
    return this.#leaving
  }

  /** `auth_success` has gone out: what the server's counts of authenticated connections count. */
  get authenticated(): boolean {
    return this.#greeted
  }

  /** The user, once authenticated. */
  get userId(): string | undefined {
    return this.#userId
  }

  /** The article's client's acks; undefined for a client that acks itself. */
  get acks(): ImplicitAcks | undefined {
    return this.#acks
  }

  /** The verified token's claims (only when subscriptions are authorized). */
  get claims(): Readonly<Record<string, unknown>> {
    return this.#claims ?? {}
  }

  /**
   * What the user may cost, shared with the user's other connections
   * (budget.ts; after auth). Looked up at each use, not kept: a budget left
   * full is forgotten, so an idle connection holds none.
   */
  get budget(): UserBudget {
    return this.hub.budgets.of(this.#userId!)
  }

  /**
   * Waits while the user's requests have made the server send more than its
   * byte budget allows (budget.ts): a replay round or a history page is slowed
   * until the debt is paid, never refused.
   */
  async payDebt(): Promise<void> {
    // Looked at again after each wait: the user's other sockets may have waited on the same debt and sent
    // their rounds or pages first, each a debt of its own.
    for (let wait = this.budget.bytes.waitMs; wait > 0 && !this.closed; wait = this.budget.bytes.waitMs) {
      await sleep(wait, undefined, { ref: false })
    }
  }

  /**
   * Auth succeeded: the connection belongs to `userId` (and counts toward its
   * connections) until its token expires at `expiresAt`, and starts replaying.
   * `implicitAcks`: a client of the article's protocol, acked for (implicit-ack.ts).
   */
  signIn(userId: string, expiresAt: number, implicitAcks: boolean, claims?: Readonly<Record<string, unknown>>): void {
    this.#userId = userId
    this.#expiresAt = expiresAt
    this.#claims = claims
    this.#badFrames = 0
    if (implicitAcks) this.#acks = new ImplicitAcks(this)
    this.moveTo('replaying')
    this.hub.registry.add(userId, this)
  }

  /** True once closing: re-read after every await (the socket may have closed meanwhile). */
  get closed(): boolean {
    return this.#phase === 'closed'
  }

  /**
   * The one setter of the phase. Signing in frees the slot among the sockets
   * waiting for auth (a socket refused before auth keeps it until it is gone:
   * closing sockets count against `maxUnauthenticated`); `closed` is final and
   * releases everything the connection holds (the registry entry, timers).
   */
  moveTo(to: ConnectionPhase): void {
    const from = this.#phase
    if (from === to || from === 'closed') return
    this.#phase = to
    if (from === 'authenticating') {
      if (to !== 'closed') this.hub.unauthenticated.delete(this)
      this.#authTimer = void clearTimeout(this.#authTimer) // its closure would live as long as the connection
    }
    if (to === 'closed') {
      this.#acks?.stop()
      if (this.#userId !== undefined) this.hub.registry.remove(this.#userId, this)
    }
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
      this.hub.metrics?.slowConsumerCuts.inc()
      this.close(CloseCode.SlowConsumer, 'slow consumer')
    }
  }

  reply(f: ServerFrame): void {
    this.send(frame(f))
  }

  /**
   * What is sent from here to the end of this tick leaves in one write: the
   * socket is corked until the next tick. An auth answer and its replay are
   * several frames written together; each would otherwise be a system call.
   */
  cork(): void {
    const socket = this.socket
    if (!socket || socket.writableCorked > 0) return
    socket.cork()
    process.nextTick(uncork, socket)
  }

  /** Answers a bad frame with an error; too many in a row close the connection. */
  reject(code: ErrorCode, message: string, requestId?: string): void {
    this.reply({ type: 'error', code, message, ...rid(requestId) })
    this.#badFrames += 1
    if (this.#badFrames >= this.hub.limits.maxBadFrames) this.close(CloseCode.ProtocolViolation, 'too many bad frames')
  }

  /** Closes with a code and a short reason (RFC 6455 §5.5: at most 123 bytes). */
  close(code: number, reason: string): void {
    if (this.closed) return
    // Before `auth_success` has gone out the socket never authenticated: a refusal (and a 1011 at
    // auth, the store failing after signIn, is one: reason `other`).
    const refused = !this.#greeted
    this.moveTo('closed')
    this.hub.metrics?.closed(code)
    if (refused) this.hub.metrics?.refused(code)
    // What was sent before the close frame, asked of the client in a ping just ahead of it: a client that
    // answers the close reads the ping first and pongs it (see pong()). One that started a close of its own,
    // even with the same code as it crossed ours, answers no ping (RFC 6455 §5.5.2; browsers and ws alike).
    if (this.ws.readyState === WebSocket.OPEN && this.#userId !== undefined && this.replay.sentSeq > this.#pongAcked) this.ping()
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, reason)
    // A client that does not read will not read the close frame either, and any may never answer it:
    // free the socket soon, not after ws's 30 s close timeout.
    setTimeout(() => this.ws.terminate(), refused ? REFUSED_GRACE_MS : CLOSED_SOCKET_GRACE_MS).unref()
  }

  /**
   * A drain's close (1001). A client of the article's protocol resumes where the user's ack is,
   * and may reconnect to another process (the successor, or another on PostgreSQL) at once: so
   * the close waits until the ack written in the store covers all the socket was sent. An ack made
   * at the close's answer (gone()) would join the store's ack batch, which that reconnect can
   * overtake. Until then it pings with the last seq sent (again when more was sent meanwhile, as
   * publishes go on during a drain), or waits for the write of a pong's ack already made. At most
   * `ms`: a client that does not answer in time is closed all the same, and gone() acks at its
   * answer to the close, as before. Any other connection is closed at once. Meanwhile it is sent
   * nothing live, nor another replay round ({@link leaving}): with a notification every ack's write
   * (some 50 ms), or rounds back to back, the ack never caught up, and the wait ran out with the
   * client acked behind what it had.
   */
  async leave(ms: number): Promise<void> {
    const end = performance.now() + ms
    this.#leaving = this.#acks !== undefined
    while (
      this.#acks &&
      !this.closed &&
      this.ws.readyState === WebSocket.OPEN &&
      this.replay.sentSeq > this.#written &&
      performance.now() < end
    ) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, end - performance.now()).unref()
        this.#acked = () => {
          clearTimeout(timer)
          resolve()
        }
        if (this.replay.sentSeq > this.#pongAcked) this.ping()
      })
      this.#acked = undefined
    }
    this.close(CloseCode.GoingAway, 'server shutting down')
  }

  /**
   * Refuses the auth: logged at warn with its reason (never the token; with the user once the token
   * named one), an `auth_error`, then the close (docs/protocol.md, "Close codes").
   */
  refuseAuth(code: ErrorCode, close: number, message: string, reason = message, user?: string): void {
    this.hub.log.warn({ conn: this.id, code, reason: message, ...(user && { user }) }, 'auth refused')
    this.reply({ type: 'auth_error', code, message })
    this.close(close, reason)
  }

  /** From the socket's shared `message` listener. */
  receive(data: WebSocket.RawData, isBinary: boolean): void {
    if (this.closed) return
    const authed = this.#userId !== undefined
    if (!authed) {
      // Before auth one small frame is expected: a large one is not even parsed (deeply nested
      // JSON costs CPU), and a socket cannot pile up frames while its auth is being checked.
      // The one large thing an auth frame carries is its token: refused as invalid (4001), which
      // ends a client's retries, where 1009 would have it send the same token again for ever.
      if (byteLength(data) > this.hub.limits.maxAuthFrameBytes) {
        const message = 'auth frame larger than maxAuthFrameBytes: the token is too large'
        this.refuseAuth(ErrorCode.TokenInvalid, CloseCode.TokenInvalid, message, 'token too large')
        return
      }
      if (++this.#early > this.hub.limits.maxBadFrames) {
        this.close(CloseCode.ProtocolViolation, 'too many frames before auth')
        return
      }
    }
    if (isBinary) {
      if (authed && !this.#spend()) return
      this.reject(ErrorCode.BinaryFrame, 'binary frames are not supported; send JSON text')
      return
    }
    // Parsed before it is paid for (a history request may go free): one over the budget is parsed, then closed.
    const parsed = parseClientFrame(data.toString())
    if (authed && !this.#spend(parsed.ok && parsed.frame.type === 'history')) return
    if (!parsed.ok) {
      this.reject(parsed.code, parsed.message, parsed.requestId)
      return
    }
    if (authed) this.#badFrames = 0
    const f = parsed.frame
    if (f.type === 'ack' && authed) {
      // The most frequent frame (one per client per burst of deliveries) needs no order: written
      // now (the store batches them), not through the queue, whose promises would cost more.
      this.ack(f.seq).catch((error: unknown) => this.hub.log.warn({ conn: this.id, err: error }, 'ack failed'))
      return
    }
    const resume = f.type === 'resume'
    const requestId = 'requestId' in f ? f.requestId : undefined
    // Before auth the frames are bounded by maxBadFrames; after it, every one by the queue's bound but one resume.
    if (authed && this.#queued >= MAX_QUEUED_REQUESTS && !(resume && this.#resumes === 0)) {
      this.reject(ErrorCode.RateLimited, `${MAX_QUEUED_REQUESTS} requests are waiting: send more once they are answered`, requestId)
      return
    }
    if (resume) this.#resumes++
    this.#enqueue(
      () => {
        if (resume) this.#resumes--
        return this.#handle(f, !authed)
      },
      f.type === 'auth' || resume,
      requestId,
    )
  }

  /** Takes one frame from the user's budget; past it, closes with 4029 and says false. */
  #spend(history?: boolean): boolean {
    // The `resume` a round asks for is the client's only way on: one frame free for each round announced, so that
    // a long catch-up (a `resume` every 500 entries, sent at once) is paced by the byte budget, never refused.
    const announced = this.replay.announced
    if (announced !== undefined && this.#freeFor !== announced) {
      this.#freeFor = announced
      return true
    }
    // So is a catch-up page by page (a belfry/shared tab filling a gap through its leader's socket).
    if (history && this.#pagePasses > 0) {
      this.#pagePasses--
      return true
    }
    if (this.budget.frames.take()) return true
    this.hub.metrics?.rateLimitCuts.inc()
    this.close(CloseCode.RateLimited, retryReason('rate limited', Math.max(1000, this.budget.frames.retryMs)))
    return false
  }

  /**
   * Runs a task after the ones before it. A failed task is answered with an
   * `internal` error (echoing the request's id, so that its promise settles
   * now); a failed auth or replay (`critical`) also closes with 1011, since the
   * connection would never go live: the client reconnects. (A `subscribe` or
   * `unsubscribe` whose store write fails closes it too: see requests.ts.)
   */
  #enqueue(task: () => Promise<void>, critical = false, requestId?: string): void {
    // Once the queue runs dry it is the shared settled promise again: an idle connection keeps none of its own.
    this.#queued++
    const next: Promise<void> = this.#queue.then(task).then(
      () => this.#drained(next),
      (error: unknown) => {
        this.#drained(next)
        this.requestFailed(error, critical, requestId)
      },
    )
    this.#queue = next
  }

  #drained(last: Promise<void>): void {
    this.#queued--
    if (this.#queue === last) this.#queue = SETTLED
  }

  /**
   * Sends a frame about the user's state (a read change made elsewhere). Before
   * `auth_success` has gone out it waits, and follows it ({@link greeted}): the
   * first frame after auth is `auth_success`. While a replay round is on its way
   * ({@link hold}) it waits for the round's notifications, which were read
   * before the change and would contradict it (`read: false`) if they came after.
   * A held frame's count is then older than what went out before it (see
   * {@link release}).
   */
  tell(data: string | Buffer): void {
    if (this.#holding === 0) this.send(data)
    else if (this.#held) this.#held.push(data)
    else this.#held = [data]
  }

  /** `auth_success` has gone out: what {@link tell} held follows it. */
  greeted(): void {
    // Counted here, not at signIn: an auth whose store read then fails (1011) is no authentication.
    this.#greeted = true
    this.hub.metrics?.authentications.inc()
    this.release()
  }

  /** What {@link tell} is given waits until as many {@link release} calls. */
  hold(): void {
    this.#holding++
  }

  /**
   * Sends what {@link tell} held: their ids say what became read. Their counts
   * were taken when each change committed, and what went out before them
   * (`auth_success`'s count, the round's notifications, which the client counted
   * one by one) may be newer: the client would go back to the older count, one
   * short per notification committed since. So the user's count is read again
   * from the store and told after them. Only when something was held: rare.
   */
  release(): void {
    if (--this.#holding > 0) return
    const held = this.#held
    if (!held) return
    this.#held = undefined
    for (const data of held) this.send(data)
    if (!this.closed) this.hub.refreshReadState(this.#userId!)
  }

  /** Answers a request that failed with an `internal` error; `critical`: closes the connection with 1011 too. */
  requestFailed(error: unknown, critical: boolean, requestId?: string): void {
    this.hub.log.error({ conn: this.id, err: error }, 'frame handler failed')
    this.reply({ type: 'error', code: ErrorCode.Internal, message: 'internal error', ...rid(requestId) })
    if (critical) this.close(CloseCode.InternalError, 'internal error')
  }

  /**
   * Records the client's ack, cut to what this socket was sent: a client
   * cannot have read more, and the store writes acks a moment later (they
   * gather), when the user may have notifications it has not been sent. Before
   * anything is sent, a cursor from another database acks nothing ({@link Replay.ackable}).
   */
  ack(seq: number): Promise<number> {
    return this.hub.store.ack(this.#userId!, Math.min(seq, this.replay.ackable))
  }

  /**
   * A full history page was sent: a page of the most items one may ask for, or one cut short by its bytes,
   * paid from the byte budget. One `history` request after it goes free of the frame budget, as a replay
   * round's `resume` does: a long catch-up page by page is paced by the byte budget, not refused. A page
   * that is not full (an empty one costs a read and a few bytes) earns nothing.
   */
  pagePaid(): void {
    this.#pagePasses++
  }

  /** Runs work of the connection's own (a replay after a gap) in its frame queue, as critical. */
  schedule(task: () => Promise<void>): void {
    this.#enqueue(task, true)
  }

  /** `early`: the frame came before auth, when the user's frame budget was not known: it pays now. */
  async #handle(f: ClientFrame, early: boolean): Promise<void> {
    if (this.closed) return
    if (f.type === 'auth') return authenticate(this, f)
    if (this.#phase === 'authenticating') {
      this.reject(ErrorCode.NotAuthenticated, 'send an auth frame first', 'requestId' in f ? f.requestId : undefined)
      return
    }
    if (early && !this.#spend()) return
    return handleFrame(this, f)
  }

  /**
   * Called by the server's heartbeat sweep (one timer for all sockets): a
   * socket that has not answered the previous ping is taken for dead and
   * terminated; the others are pinged.
   */
  heartbeat(): void {
    if (this.#awaitingPong) {
      this.ws.terminate()
      return
    }
    this.#awaitingPong = true
    this.ping()
  }

  /**
   * Pings, carrying the last seq sent on this socket when no pong has acked
   * it yet. Every WebSocket answers a ping with a pong that carries the same
   * bytes, sent after it received everything before the ping: that pong acks
   * the seq (docs/protocol.md, "Acks"). The ack rides on the heartbeat: no
   * frame of its own in either direction.
   */
  ping(): void {
    const seq = this.replay.sentSeq
    if (seq > this.#pongAcked) {
      this.#pingedSeq = seq
      this.ws.ping(String(seq))
    } else {
      this.ws.ping()
    }
  }

  /**
   * The connection starts from `seq`, which the client has already (its
   * cursor) or which the user acked: its pings carry a seq only once more
   * than that was sent, so an idle connection's heartbeat writes nothing.
   */
  startsAfter(seq: number): void {
    this.#pongAcked = this.#written = seq
  }

  /**
   * The cursor taken as an ack at auth (`seq`, see {@link startsAfter}) was not written (a store
   * blip): the user's ack is still `acked`. The next ping carries `seq` again, as after a pong's
   * failed ack, unless more was acked on this socket since.
   */
  cursorNotAcked(seq: number, acked: number): void {
    if (this.#pongAcked === seq) this.#pongAcked = acked
    if (this.#written === seq) this.#written = acked
  }

  /**
   * From the socket's shared `pong` listener: the client is alive, and a pong
   * that answers the latest ping with a seq acks it. Other pongs ack nothing:
   * one store write per ping, none per forged pong.
   */
  pong(payload: Buffer): void {
    this.#awaitingPong = false
    const seq = this.#pingedSeq
    // After close() too: the answer to the ping sent ahead of the close frame.
    if (seq === 0 || payload.toString() !== String(seq)) return
    this.#pingedSeq = 0
    const before = this.#pongAcked
    this.#pongAcked = seq
    this.ack(seq).then(
      () => {
        this.#written = Math.max(this.#written, seq)
        this.#acked?.()
      },
      (error: unknown) => {
        // Not written: the next ping carries the seq again (unless a later pong has acked more meanwhile).
        if (this.#pongAcked === seq) this.#pongAcked = before
        this.hub.log.warn({ conn: this.id, err: error }, 'ack failed')
        this.#acked?.()
      },
    )
  }

  /** Called by the server's once-a-second sweep: closes with 4002 once the token has expired. */
  expireBy(now: number): void {
    if (now < this.#expiresAt || this.closed) return
    this.reply({ type: 'auth_error', code: ErrorCode.TokenExpired, message: 'token expired' })
    this.close(CloseCode.TokenExpired, 'token expired')
  }

  /**
   * From the socket's shared `error` listener: `ws` refused a frame itself (over
   * `maxFrameBytes`, not UTF-8, a bad opcode), sent its close frame and stopped
   * reading. Counted under the code it sent (no close frame comes back: it
   * would count as 1006), and destroyed after the grace of a close
   * ({@link close}), not after `ws`'s 30 s close timeout.
   */
  failed(error: Error & { code?: string }): void {
    this.close(WS_CLOSES[error.code ?? ''] ?? PROTOCOL_ERROR, 'protocol error')
  }

  /** From the socket's shared `close` listener: the socket is gone, with the code the client sent (1006: none) unless the server closed it. */
  gone(code: number): void {
    if (!this.closed) this.hub.metrics?.closed(code)
    this.#acked?.()
    this.moveTo('closed')
    this.hub.connections.delete(this)
    this.hub.unauthenticated.delete(this)
  }
}

/** The close code `ws` sends for a frame it refuses, by its error's code (ws's receiver); any other is 1002. */
const WS_CLOSES: Readonly<Record<string, number>> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CloseCode.TooLarge,
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: CloseCode.TooLarge,
  WS_ERR_INVALID_UTF8: 1007,
  WS_ERR_TOO_MANY_BUFFERED_PARTS: 1008,
}
/** RFC 6455's protocol error: what ws sends for a frame it cannot parse. */
const PROTOCOL_ERROR = 1002

// The sockets' listeners, one set for all (`this` is the socket).
function onMessage(this: WebSocket, data: WebSocket.RawData, isBinary: boolean): void {
  owner(this).receive(data, isBinary)
}
function onPong(this: WebSocket, payload: Buffer): void {
  owner(this).pong(payload)
}
function onClose(this: WebSocket, code: number): void {
  owner(this).gone(code)
}
function onError(this: WebSocket, error: Error): void {
  const c = owner(this)
  c.hub.log.debug({ conn: c.id, err: error }, 'socket error')
  c.failed(error)
}
