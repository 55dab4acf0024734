import { FORBIDDEN, RATE_LIMITED, TOKEN_EXPIRED, TOKEN_INVALID, TOO_LARGE } from '../protocol/close-codes.js'
import type { AuthFrame, AuthSuccessFrame, ClientFrame, ServerFrame } from '../protocol/frames.js'
import { parseServerFrame } from '../protocol/parse-server-frame.js'
import { AuthError, BelfryError, ConnectionError, ProtocolError } from './errors.js'
import { isFunction, type Provider, type ResolvedClientOptions, wsUrl } from './options.js'
import { createTransport, NEVER, type Transport } from './transport.js'

/**
 * ```
 *            connect()                  socket open              auth_success
 *   idle ──────────────► connecting ──────────────► authenticating ──────────► online
 *                          ▲   │ close / timeout          │ close                │ close, pong timeout
 *                 timer    │   ▼                          ▼                      ▼
 *                        reconnecting ◄──────────────────────────────────────────┘
 *   browser offline: any ──► offline ──(online event)──► connecting
 *   close(), 4003, 4001 twice: any ──► closed (final)
 * ```
 */
export type ConnectionState = 'idle' | 'connecting' | 'authenticating' | 'online' | 'reconnecting' | 'offline' | 'closed'

/**
 * How this tab reaches the server: `solo`, its own socket (the default);
 * with `sharedConnection()` from `belfry/shared`, `leader` (its socket, shared
 * with the user's other tabs) or `follower` (through the leader's).
 */
export type ConnectionMode = 'solo' | 'leader' | 'follower'

/** Emitted on every change of {@link ConnectionState}. */
export interface StatusEvent {
  from: ConnectionState
  to: ConnectionState
  mode: ConnectionMode
  /** Why: 'connect', 'open', 'auth', 'retry', 'close 1006', 'token expired', 'token or url failed', 'offline', 'pong timeout', … */
  reason: string
  /** Retries since the connection was last up for `minUptime`. */
  attempt: number
  /** With `reconnecting`: ms until the next try; undefined otherwise. */
  retryIn?: number | undefined
  /**
   * With `online`: true when the server's retention removed notifications
   * that followed this client's cursor before it got them ("older
   * notifications expired"; how many is unknown).
   */
  expired?: boolean | undefined
}

/**
 * What the client needs of its connection: a {@link Link}, or what a
 * `connection` option makes (`sharedConnection()` from `belfry/shared`).
 */
export interface Connection {
  readonly state: ConnectionState
  /** True when the server speaks only the article's protocol (no seq, no pong). */
  readonly legacy: boolean
  connect(): void
  /** Final: closes the socket, clears every timer and listener. */
  close(reason?: string): void
  /** Sends when online; false otherwise. */
  send(frame: ClientFrame): boolean
  /** The tab's {@link ConnectionMode} now; a connection without one is `solo`. */
  readonly mode?: ConnectionMode | undefined
}

/**
 * The `connection` option: makes the client's connection, given what the
 * connection tells the client (`host`), the resolved options, and `solo`,
 * which makes the default connection (one socket for this client) for a host.
 */
export type ConnectionFactory = (host: LinkHost, options: ResolvedClientOptions, solo: (host: LinkHost) => Connection) => Connection

/** What the link tells the client. */
export interface LinkHost {
  status(event: StatusEvent): void
  /** Fields for the auth frame, given the token about to be sent. */
  auth(token: string): Omit<AuthFrame, 'type' | 'token'>
  /** The state is `online` and may send; runs before the `online` status event. */
  online(frame: AuthSuccessFrame): void
  frame(frame: ServerFrame): void
  error(error: BelfryError): void
}

const resolve = async <T>(p: Provider<T>): Promise<T> => (isFunction(p) ? (p as () => T | Promise<T>)() : p)

/**
 * Owns the socket: connection state, the one retry timer, auth, heartbeat and
 * the browser's network signals. Knows nothing of notifications.
 */
export class Link implements Connection {
  #state: ConnectionState = 'idle'
  /** The state the last status event went to: one entered and left inside `enter` (close() from a handler) is not heard of. */
  #told: ConnectionState = 'idle'
  #legacy = false
  #attempt = 0
  /**
   * A 4029's delay: no reconnect before this time, whatever the browser signals. On the monotonic clock
   * (performance.now()): the wall clock steps, and stepped back an hour, an online event would wait an hour.
   */
  #notBefore = 0
  /** A 4001 or 4002 was answered with an immediate retry with a fresh token, and online was not reached since. */
  #refreshed: boolean | undefined
  /** Attempts in a row that failed before the socket opened: the first and every tenth are reported. */
  #failures = 0
  /** The URL of the attempt in progress; '' until its url and token providers have answered (undefined before the first). */
  #url: string | undefined
  /** The state's own timer: connect/auth timeout, retry delay, or uptime while online. */
  #phase: ReturnType<typeof setTimeout> | undefined
  #ping: ReturnType<typeof setTimeout> | undefined
  #pong: ReturnType<typeof setTimeout> | undefined
  /** Identifies the attempt, so a token or URL that resolves late is dropped. */
  #attemptId = 0
  #tokenCall: Promise<string> | undefined
  /** The last auth_error's message, for the close that follows it; undefined or '' for none. */
  #authError: string | undefined
  /** The auth frame of the attempt in progress, sent once its socket opens. */
  #pendingAuth = ''
  readonly #transport: Transport
  readonly #unwatch: (() => void)[] = []

  readonly #o: ResolvedClientOptions
  readonly #host: LinkHost

  constructor(o: ResolvedClientOptions, host: LinkHost) {
    this.#o = o
    this.#host = host
    // Arrow fields, handed over as they are (a wrapper each would cost bytes).
    this.#transport = createTransport(o.WebSocket, {
      open: this.#opened,
      message: this.#message,
      close: this.#closed,
    })
  }

  get state(): ConnectionState {
    return this.#state
  }

  /**
   * True when online to a server that speaks only the article's protocol (no seq, no pong): that connection's
   * mode, not the URL's (the next server on it may be belfry's, and requests made meanwhile wait for it).
   */
  get legacy(): boolean {
    return this.#state === 'online' && this.#legacy
  }

  connect(): void {
    if (this.#state !== 'idle') return
    if (this.#o.watchNetwork) {
      this.#watch()
      // Without the watch nothing would bring it back from offline.
      if (globalThis.navigator?.onLine === false) return void this.#set('offline', 'offline')
    }
    void this.#open('connect')
  }

  /** Final: closes the socket, clears every timer and listener. */
  close(reason = 'close'): void {
    if (this.#state === 'closed') return
    this.#transport.close()
    this.#set('closed', reason)
    for (const off of this.#unwatch.splice(0)) off()
  }

  /** Sends when online to a belfry server; false otherwise (the article's server takes nothing but auth). */
  send(frame: ClientFrame): boolean {
    if (this.#state !== 'online' || this.#legacy) return false
    this.#transport.send(JSON.stringify(frame))
    return true
  }

  /**
   * The one setter: clears the old state's timers, runs `enter` (the state's
   * own work, done before anyone hears of it) and emits the change. `closed` is
   * final. Returns whether the state is still `to` afterwards: a handler may
   * have called close(), and then the caller must not go on.
   */
  #set(to: ConnectionState, reason: string, retryIn?: number, enter?: () => void): boolean {
    const from = this.#state
    if (from !== to && from !== 'closed') {
      this.#state = to
      clearTimeout(this.#phase)
      clearTimeout(this.#ping)
      this.#pong = void clearTimeout(this.#pong)
      enter?.()
      if (this.#state === to) {
        // `told` moves before the handlers run (one may change the state again).
        // biome-ignore lint/suspicious/noAssignInExpressions: keeps the client within its size limit
        this.#host.status({ from: this.#told, to: (this.#told = to), mode: 'solo', reason, attempt: this.#attempt, retryIn })
      }
    }
    return this.#state === to
  }

  async #open(reason: string): Promise<void> {
    if (!this.#set('connecting', reason)) return
    // An earlier socket's (its close ignored, offline) is no word about this one, nor its URL.
    this.#authError = this.#url = ''
    const id = ++this.#attemptId
    const stale = () => id !== this.#attemptId || this.#state !== 'connecting'
    this.#phase = setTimeout(() => this.#drop('connect timeout'), this.#o.connectTimeout)
    let url: string | undefined
    let token: string
    let call: Promise<string>
    try {
      url = wsUrl(await resolve(this.#o.url))
      // One token call in flight at a time; every connect gets a fresh one. A call given up on (not answered within
      // connectTimeout: #drop forgets it) that settles late leaves the one in flight since alone.
      // biome-ignore lint/suspicious/noAssignInExpressions: the call in flight, or a fresh one (keeps the client within its size limit)
      token = await (call = this.#tokenCall ??=
        resolve(this.#o.token).finally(() => {
          if (this.#tokenCall === call) this.#tokenCall = undefined
        }))
      if (!url || typeof token !== 'string' || !token) throw new TypeError(`bad ${url ? 'token' : 'url'}`)
    } catch (cause) {
      if (stale()) return
      this.#host.error(new BelfryError('url or token provider failed', { cause }))
      return this.#retry('token or url failed')
    }
    if (stale()) return
    this.#url = url
    this.#pendingAuth = JSON.stringify({ type: 'auth', token, ...this.#host.auth(token) } satisfies AuthFrame)
    // The auth's extras tell the app of another user's start (its unread count, 0): a handler may have closed the client.
    if (!stale()) this.#transport.open(url)
  }

  readonly #opened = (): void => {
    if (this.#state !== 'connecting' || !this.#set('authenticating', 'open')) return
    this.#phase = setTimeout(() => this.#drop('auth timeout'), this.#o.connectTimeout)
    this.#transport.send(this.#pendingAuth)
  }

  readonly #message = (data: string): void => {
    const frame = parseServerFrame(data)
    this.#pong = void clearTimeout(this.#pong) // any frame shows the connection is alive
    if (!frame) {
      this.#host.error(new ProtocolError(`bad frame: ${data.slice(0, 80)}`))
      return
    }
    // At auth or later (the token expired): the close that follows says what to do, with its message.
    if (frame.type === 'auth_error') this.#authError = frame.message
    if (this.#state === 'authenticating') {
      if (frame.type === 'auth_success') {
        this.#legacy = frame.seq === undefined // the parser let through a seq or none
        this.#failures = 0
        // The client restores its session (requests, topics) before the app hears of `online`:
        // whatever the app sends then goes out once, after those.
        if (!this.#set('online', 'auth', undefined, () => this.#host.online(frame))) return
        // Online for minUptime: the backoff starts over, and a 4001/4002 gets its immediate retry again
        // (at once, a server that accepts each token and closes it would have the client retry in a loop).
        this.#phase = setTimeout(() => {
          this.#attempt = 0
          this.#refreshed = false
        }, this.#o.minUptime)
        this.#beat()
      } else if (frame.type === 'error') {
        // The auth frame was refused as malformed: the app hears why (the connection times out and retries).
        this.#host.error(new ProtocolError(frame.message, { code: frame.code }))
      }
      return
    }
    if (frame.type !== 'pong') this.#host.frame(frame)
  }

  #beat(): void {
    if (this.#legacy) return // the article's server answers no ping
    this.#ping = setTimeout(() => {
      this.#check()
      this.#beat()
    }, this.#o.pingInterval)
  }

  /** Pings; no frame within `pongTimeout` of the first unanswered ping means a dead (perhaps half-open) connection. */
  #check(): void {
    // Not sent (not online, or the article's server, which answers no ping): nothing to wait for.
    if (this.send({ type: 'ping' })) this.#pong ??= setTimeout(() => this.#drop('pong timeout'), this.#o.pongTimeout)
  }

  /** Gives up on the current socket (it may be half-open) and retries. */
  #drop(reason: string): void {
    this.#transport.close(reason)
    if (this.#state === 'connecting') {
      // No URL yet: the providers have not answered, and no server was tried.
      if (this.#url) this.#failed(reason)
      else {
        // Asked again at the retry: a call that never settles (a lost fetch) would hold every attempt.
        this.#tokenCall = undefined
        this.#host.error(new BelfryError('url or token provider did not answer within connectTimeout'))
        // As a failed provider's retry: no server was tried (belfry/shared's leader steps down on it).
        reason = 'token or url failed'
      }
    }
    this.#retry(reason)
  }

  /** An attempt failed before its socket opened: says so on the first failure in a row and every tenth. */
  #failed(detail: string, code?: number): void {
    if (!(this.#failures++ % 10)) this.#host.error(new ConnectionError(`cannot connect to ${this.#url}: ${detail}`, { code }))
  }

  /** What each close code means for the client: docs/protocol.md, "Close codes". */
  readonly #closed = (code: number, reason: string, error?: string): void => {
    // Never closed nor offline here: the transport tells nothing of a socket after it was told to close it.
    // Closed before it opened: nothing answered there as a WebSocket server would.
    if (this.#state === 'connecting') this.#failed(error || 'unreachable, or not a WebSocket endpoint', code)
    const message = this.#authError || reason
    this.#authError = ''
    const refreshable = isFunction(this.#o.token)
    // A 1009 while authenticating: the auth frame, the only one sent, was over the server's maxFrameBytes (a token too large).
    const invalid = code === TOKEN_INVALID || (code === TOO_LARGE && this.#state === 'authenticating')
    const token = invalid || code === TOKEN_EXPIRED
    if (token && refreshable && !this.#refreshed) {
      // One immediate retry with a fresh token. A token given as a string cannot be refreshed.
      this.#refreshed = true
      void this.#open(invalid ? 'token invalid' : 'token expired')
    } else if (code === FORBIDDEN || invalid || (token && !refreshable)) {
      // Reports first: closing clears the app's listeners. A close without a reason (ws's 1009) says its code.
      this.#host.error(new AuthError(message || `close ${code}`, { code }))
      this.close('auth failed')
    } else {
      // 4002 again right after a fresh token (clock skew?), 1001, 1006, 1009 once online, 1011, 4000, 4008, 4009, …: back off and retry.
      // A 4029's delay, but never shorter than the backoff's nor longer than 10 minutes (a proxy's or a
      // broken server's retry=1 would bring a reconnect storm, and retry=1e9 days off the air).
      // The reason's `retry=<ms>`, as parseRetryReason reads it (inlined: smaller); none is 0 or NaN: the backoff's.
      const hinted = +((code === RATE_LIMITED && /\bretry=(\d+)/.exec(reason)?.[1]) as string)
      const delay = hinted && Math.min(Math.max(hinted, this.#o.backoff(this.#attempt)), 600_000)
      if (delay) this.#notBefore = performance.now() + delay
      this.#retry(`close ${code}`, delay)
    }
  }

  /**
   * `delay`: a 4029's; absent or 0, the backoff's, held to [0, 2^31-1] ms (NaN and Infinity wait the longest).
   * `rearm`: the rest of a 4029's delay waited out again (back online within it): no attempt was made.
   */
  #retry(reason: string, delay?: number, rearm?: boolean): void {
    let retryIn = delay || this.#o.backoff(this.#attempt)
    retryIn = retryIn < NEVER ? Math.max(0, retryIn) : NEVER
    if (!rearm) this.#attempt++
    if (this.#set('reconnecting', reason, retryIn)) this.#phase = setTimeout(() => this.#open('retry'), retryIn)
  }

  #watch(): void {
    const { window: w, document: d } = globalThis as Partial<typeof globalThis>
    const listen = (target: EventTarget | undefined, type: string, fn: () => void) => {
      target?.addEventListener(type, fn)
      this.#unwatch.push(() => target?.removeEventListener(type, fn))
    }
    listen(w, 'offline', () => {
      // Not when closed: close() removes this listener.
      if (this.#state === 'idle') return
      this.#transport.close('offline')
      this.#set('offline', 'offline')
    })
    // Both reconnect at once, with a fresh backoff; within a 4029's delay, the backoff stays where it is.
    listen(w, 'online', () => {
      if (this.#state !== 'offline' && this.#state !== 'reconnecting') return
      const wait = this.#notBefore - performance.now()
      if (wait <= 0) {
        this.#attempt = 0
        void this.#open('online')
      } else if (this.#state === 'offline') this.#retry('online', wait, true)
    })
    listen(d, 'visibilitychange', () => {
      if (d?.visibilityState !== 'visible') return
      if (this.#state !== 'reconnecting') this.#check()
      else if (this.#notBefore <= performance.now()) void this.#open('visible')
    })
  }
}
