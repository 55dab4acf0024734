import { createServer, type Server as HttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { Server as TlsServer } from 'node:tls'
import { pino } from 'pino'
import { type WebSocket, WebSocketServer } from 'ws'
import { CloseCode, isShortString, isUserId, MAX_ID_LENGTH, parseServerFrame } from '../protocol/index.js'
import { tokenVerifier } from './auth.js'
import { type Broker, type BrokerEvent, InProcessBroker } from './broker/broker.js'
import { Budgets } from './budget.js'
import { Connection } from './connection/connection.js'
import { boundBody, devRefusal, type Health, type HttpContext, handleHttp, sendJson, UnavailableError } from './http.js'
import type { Hub } from './hub.js'
import { createMetrics } from './metrics.js'
import { type ResolvedOptions, resolveOptions, type ServerOptions, shown } from './options.js'
import { checkAudience, checkNotification, everyIndex } from './publish-input.js'
import { Registry } from './registry.js'
import { Pruner } from './retention.js'
import { frame, notificationFrame, sharedPart } from './serialize.js'
import { SqliteStore } from './store/sqlite.js'
import {
  type Audience,
  IdempotencyKeyReusedError,
  type NotificationInput,
  type Published,
  type PublishOptions,
  type Store,
  type UserState,
} from './store/store.js'

/** API calls are independent requests: a store may commit those of one turn together. */
const GATHER: PublishOptions = { gather: true }

/** What a publish resolves to, once the notification is durable. */
export interface PublishResult {
  /** The notification's id (the same in every recipient's inbox). */
  id: string
  /** How many inboxes it was written to. */
  recipients: number
}

function destroy(this: Duplex): void {
  this.destroy()
}

/** Paths that accept a WebSocket upgrade: `/ws`, and `/` for the article's clients. */
const WS_PATHS = new Set(['/ws', '/'])
/** An upgrade to another protocol's headers (and `Connection` options): left out to serve the request as HTTP/1.1. */
const UPGRADE_HEADERS = new Set(['upgrade', 'http2-settings'])
/** Distinct reasons the dev fence logs, at most: a page retrying, or many origins, cannot flood the terminal. */
const FENCE_REASONS_TOLD = 20

/**
 * How often the server's upkeep runs: token expiry (a connection is closed at
 * most this long after its token expires), idle budgets, fan-out jobs left by
 * any process, and while the broker is down, reading the store for what it
 * cannot carry.
 */
const SWEEP_MS = 1000

/** Sockets a heartbeat pings in one turn of the event loop (about 4 ms: a ping costs 12–16 µs here). */
const HEARTBEAT_SLICE = 256

/** How often connections are checked against the store even while the broker is up (an event lost between commit and broker). */
const RECONCILE_MS = 30_000
/** How long a failed store write keeps /healthz at `unavailable` (then a write probe decides again). */
const STORE_FAILURE_MEMORY_MS = 5000
/**
 * How long a store probe's result answers /healthz once it is in (requests during the probe
 * share it): a flood of health checks is not a flood of database writes.
 */
const HEALTH_PROBE_REUSE_MS = 1000
/** Users whose latest seq one reconcile query reads. */
const RECONCILE_CHUNK = 1000
/** How long shutdown waits for clients to answer the close handshake. */
const SHUTDOWN_HANDSHAKE_MS = 2000
/** After drain(): how long HTTP requests in flight (a publish being committed) get to be answered. */
const HTTP_GRACE_MS = 2000
/** A drain closes one batch of connections per slice of this length (one timer at a time, not one per connection). */
const DRAIN_SLICE_MS = 50
/** How long a drain waits for a client of the article's protocol to ack what it was sent before closing it (Connection.leave). */
const DRAIN_ACK_MS = 1000
/**
 * How many reads in a row of a user's read state may be stale (a newer notification sent, or a
 * change joined, meanwhile) before the last one's count goes out anyway: a stream of publishes or
 * of read changes must not hold it back for ever.
 */
const STALE_READS = 5
/**
 * How long a process remembers what read changes told its connections had become read (several
 * processes): a notification whose event comes later than that change, read before it got here, is
 * sent read. Events between processes lag by milliseconds; this is ample.
 */
const LATE_READ_MS = 30_000
/** Most ids remembered so per user: past it, the oldest go first. */
const LATE_READ_IDS = 1000
/**
 * How often, at most, the server warns that it dropped events of another deployment: every event of
 * theirs comes here while the channel is shared, and one line a minute (with the count) says enough.
 */
const FOREIGN_WARN_MS = 60_000

/**
 * How long the server's own HTTP server keeps an idle keep-alive connection
 * (Node's default: 5 s). Longer than a load balancer's idle timeout (60 s, as
 * README asks for the sockets): one that reuses its connections to the server
 * would otherwise send a publish on a connection the server is closing, and
 * answer it 502. Its headers timeout is raised above it, as Node asks.
 */
const KEEP_ALIVE_MS = 65_000

/** What read changes told a user's connections here had become read, each until when (see {@link LATE_READ_MS}). */
interface ToldRead {
  /** A `read {all}`'s seq, and until when. */
  all: number
  allUntil: number
  /** Id → until when, oldest first. */
  ids: Map<string, number>
  /** Until when anything is kept: the latest of the above. */
  until: number
}

/**
 * A read change from the broker, waiting for its user's state to be read (see `NotificationServer.#readState`),
 * or a connection's request for the count alone (no ids, no frame).
 */
interface PendingChange {
  ids: readonly string[]
  all: boolean
  seq: number
  /** The unread count the change committed with (its frame's). None for a request for the count. */
  unreadCount: number | undefined
  /** The frame as it came: what the connections get if the store cannot be read. None for a request for the count. */
  frame: string | undefined
  /** The connection that made the change: it got its own reply. */
  origin: string | undefined
}

/** The read of a user's state in flight, the changes it is for, and whether another read must follow it. */
interface StateRead {
  changes: PendingChange[]
  again: boolean
  done: Promise<void>
}

/** An admin route's store call: its failure is the store's (503 with its words, behind the API key), not the route's (500). */
const storeCall = <T>(call: Promise<T>): Promise<T> =>
  call.catch((error: unknown) => {
    throw new UnavailableError(`the store failed: ${(error as Error).message}`, { cause: error })
  })

/**
 * The reference server: authenticated WebSocket delivery from a durable inbox.
 *
 * @example
 * const server = new NotificationServer({ secret, apiKey })
 * await server.listen(3000)
 * await server.sendToUser('user123', { title: 'New message', body: 'Hi', priority: 'high' })
 */
export class NotificationServer {
  readonly #options: ResolvedOptions
  readonly #hub: Hub
  /** The dev fence's reasons already logged (see #tellFence). */
  readonly #fenceTold = new Set<string>()
  readonly #wss: WebSocketServer
  readonly #unsubscribe: () => void
  readonly #heartbeat: NodeJS.Timeout
  /** The upkeep (see {@link SWEEP_MS}): one timer for all connections, not one per connection. */
  readonly #sweep: NodeJS.Timeout
  readonly #offStatus: () => void
  /** The broker's readiness, waited for before connections are accepted. */
  readonly #started: Promise<void>
  /** Retention: the background passes, and those the admin API asks for. */
  readonly #pruner: Pruner
  /** The fan-out loop in progress: one per process. */
  #fanningOut: Promise<void> | undefined
  /** The reconcile in progress, and when the last one started (on the monotonic clock: a wall clock stepped back stopped it). */
  #reconciling: Promise<void> | undefined
  #reconciledAt = performance.now()
  /** A reconcile was asked for while one was in progress: another follows it. */
  #reconcileAgain = false
  /** A read of the store for connections failed (a reconcile, a catch-up): the next sweep reconciles, not the 30 s one. */
  #reconcileDue = false
  /** The seq and unread count last seen in the store for each user connected here ({@link #sawUserState}). */
  readonly #seenStates = new Map<string, { seq: number; unreadCount: number }>()
  /**
   * An event failed to reach the broker, or a store write that failed may have committed: once the broker is
   * up, every process is told to read the store.
   */
  #unannounced = false
  /** The store's {@link Store.deployment}: stamped on the events this process hands the broker, and required of those it takes. */
  readonly #deployment: string | undefined
  /** Events of another deployment dropped since the last warning, and when that warning was (see {@link FOREIGN_WARN_MS}). */
  #foreign = { dropped: 0, warnedAt: Number.NEGATIVE_INFINITY }
  /**
   * The broker hands events over at once, in this process (the in-process one), and the store
   * commits as it is called (SQLite's): a read change's frame then reaches the connections in commit
   * order with everything else, its count as new as what they were sent. With several processes its
   * count is read again (see {@link #readState}), and on one while a read of the user's state is in
   * flight (a connection asked for it). So it is with another store: PostgreSQL commits on several
   * pooled connections, and one commit's reply can come after a later one's.
   */
  readonly #ordered: boolean
  /** Per user, the read of the user's state in flight for read changes from the broker or a connection's request. */
  readonly #stateReads = new Map<string, StateRead>()
  /** Per user, with several processes: what read changes told had become read, lately. */
  readonly #toldRead = new Map<string, ToldRead>()
  /** The routes' view of this server, made once. */
  readonly #httpContext: HttpContext
  #http: HttpServer | undefined
  #state: 'running' | 'draining' | 'closing' | 'closed' = 'running'
  #closed: Promise<void> | undefined
  /** Ends a drain in progress at once (close() during drain()). */
  #cutDrain: (() => void) | undefined
  /** Set by drain(), cleared by close(): HTTP requests in flight get HTTP_GRACE_MS to be answered. */
  #gentle = false
  /** Ends a drain's grace for HTTP requests in flight at once (close() during it). */
  #cutGrace: (() => void) | undefined
  /**
   * The last failure of a store write the server asked for, and when: /healthz reports it for a while. `at` is on
   * the monotonic clock (a wall clock stepped back kept it fresh for the step).
   */
  #storeFailure: { at: number; message: string } | undefined
  /** The last store probe of /healthz (see {@link HEALTH_PROBE_REUSE_MS}): its error text, undefined if it passed; `at` once it is in. */
  #probe: { result: Promise<string | undefined>; at: number | undefined } | undefined

  constructor(options: ServerOptions) {
    this.#options = resolveOptions(options)
    const { limits } = this.#options
    const store: Store = this.#options.store ?? new SqliteStore(this.#options.database)
    const log = this.#options.logger ?? pino({ name: 'belfry' })
    const broker: Broker = this.#options.broker ?? new InProcessBroker({ logger: log })
    // From the store given: the metrics' timed copy of it has its methods only.
    this.#deployment = store.deployment
    this.#ordered = broker instanceof InProcessBroker && store instanceof SqliteStore
    const metrics = this.#options.metrics && createMetrics({ stats: () => this.stats(), brokerUp: () => this.#hub.broker.up })
    this.#hub = {
      store: metrics ? metrics.timeStore(store) : store,
      broker,
      announce: (...events) => this.#announce(...events),
      refreshReadState: (userId) => this.#refreshReadState(userId),
      sawUserState: (userId, seq, unreadCount) => this.#sawUserState(userId, seq, unreadCount),
      registry: new Registry(),
      connections: new Set(),
      unauthenticated: new Set(),
      limits,
      budgets: new Budgets(limits),
      authorizeSubscribe: this.#options.authorizeSubscribe,
      verify: tokenVerifier(this.#options.secret),
      log,
      metrics,
    }
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxFrameBytes, clientTracking: false, perMessageDeflate: false })
    this.#unsubscribe = broker.subscribe((event) => this.#route(event))
    // Events may have been lost while the broker was away: read the store for this process's connections.
    this.#offStatus = broker.onStatus((up) => {
      log[up ? 'info' : 'warn'](
        { up },
        up ? 'broker back: reading the store for what it may have lost' : 'broker lost: delivery falls back to the store',
      )
      if (!up) return
      this.#reconcile()
      this.#announceMissed()
    })
    this.#heartbeat = setInterval(() => this.#beat(), limits.heartbeatMs)
    this.#heartbeat.unref()
    this.#sweep = setInterval(() => this.#upkeep(), SWEEP_MS)
    this.#sweep.unref()
    this.#started = broker.ready().then(() => this.#fanOutAll())
    this.#started.catch(() => {}) // listen() and ready() report it
    // A pass lowered these users' unread counts: their connections, on every process, hear the new count.
    this.#pruner = new Pruner(this.#hub.store, this.#options.retention, log, (changes) => {
      for (const { userId, seq, unreadCount } of changes) {
        void this.#announce({ kind: 'read', userId, frame: frame({ type: 'read', ids: [], all: false, seq, unreadCount }) })
      }
    })
    this.#started.then(
      () => this.#pruner.start(),
      () => {},
    )
    this.#httpContext = {
      apiKey: this.#options.apiKey,
      secret: this.#options.secret,
      dev: this.#options.dev,
      maxBodyBytes: limits.maxBodyBytes,
      bodyTimeoutMs: limits.bodyTimeoutMs,
      maxTopicLength: limits.maxTopicLength,
      log,
      accepting: () => this.#accepting,
      health: () => this.health(),
      stats: () => ({ users: this.#hub.registry.users, connections: this.#hub.registry.connections }),
      metrics: metrics && { token: this.#options.metrics!.token, scrape: () => metrics.scrape() },
      publish: (audience, input, key) => this.#publish(audience, input, key, GATHER),
      user: async (userId) => {
        const user = await storeCall(this.#hub.store.user(userId))
        return user && { userId, ...user, connections: this.#hub.registry.authenticated(userId) }
      },
      prune: (retention) => storeCall(this.#pruner.run(retention)),
      unsubscribe: (userId, topics) => storeCall(this.unsubscribe(userId, topics)),
      retention: this.#pruner.retention,
      drop: (userId) => {
        const sockets = [...this.#hub.registry.of(userId)]
        for (const c of sockets) c.ws.terminate()
        return sockets.length
      },
      topics: (userId) => this.#hub.store.topics(userId),
    }
    if (this.#options.dev) log.warn('dev mode: GET /api/dev/token mints a token for any user and hands out the API key; never expose it')
    if (this.#options.server) this.#attach(this.#options.server)
  }

  /** The HTTP server in use (the one given, or the one {@link listen} made). */
  get httpServer(): HttpServer | undefined {
    return this.#http
  }

  /**
   * What `/healthz` reports: `draining` during drain(), `closing` once close() began; `unavailable` when
   * the store fails its check (a write probe) or failed a write in the last
   * few seconds — the server then refuses publishes (503) rather than
   * acknowledge what is not durable; `degraded` while the broker is down
   * (publishes are durable and answered, delivery to other processes falls
   * back to the store and is slower); else `ok`. Calls during a write probe
   * share it, and its result serves for 1 s after it.
   */
  async health(): Promise<Health> {
    if (this.#state === 'draining') return { status: 'draining' }
    if (this.#state !== 'running') return { status: 'closing' }
    const failure = this.#storeFailure
    if (failure && performance.now() - failure.at < STORE_FAILURE_MEMORY_MS)
      return { status: 'unavailable', reason: `store: ${failure.message}` }
    const error = await this.#probeStore()
    if (error !== undefined) return { status: 'unavailable', reason: `store: ${error}` }
    if (!this.#hub.broker.up)
      return { status: 'degraded', reason: 'broker: connection lost; delivery to other processes falls back to the store' }
    return { status: 'ok' }
  }

  /** The store's write probe, shared by the calls while it runs and reused for HEALTH_PROBE_REUSE_MS after: its error text, if it failed. */
  #probeStore(): Promise<string | undefined> {
    const last = this.#probe
    if (last && (last.at === undefined || performance.now() - last.at < HEALTH_PROBE_REUSE_MS)) return last.result
    const probe: { result: Promise<string | undefined>; at: number | undefined } = { result: Promise.resolve(undefined), at: undefined }
    const settle = (error: string | undefined) => {
      probe.at = performance.now()
      return error
    }
    // Through then(): a check that throws rather than rejects is a failed probe too.
    probe.result = Promise.resolve()
      .then(() => this.#hub.store.check())
      .then(
        () => settle(undefined),
        (error: unknown) => settle(error instanceof Error ? error.message : String(error)),
      )
    this.#probe = probe
    return probe.result
  }

  /**
   * Resolves once the server can take connections: its broker delivers to it
   * (rejects when the broker cannot be reached). `listen()` waits for it; on
   * an app's own server (`server` option), await it before serving.
   */
  ready(): Promise<void> {
    return this.#started
  }

  /**
   * In this process: users with at least one authenticated connection, those
   * connections, every open socket, and the sockets waiting for (or refused
   * at) auth that count against `maxUnauthenticated`.
   */
  stats(): { users: number; connections: number; sockets: number; unauthenticated: number } {
    const { registry, connections, unauthenticated } = this.#hub
    return { users: registry.users, connections: registry.connections, sockets: connections.size, unauthenticated: unauthenticated.size }
  }

  /**
   * Creates an HTTP server that serves the API and WebSocket upgrades, and
   * listens on `port` (0 picks a free one) at `host`: without one, every
   * interface, or 127.0.0.1 in dev mode (whose routes hand out tokens and the API key).
   */
  async listen(port = 0, host: string | undefined = this.#options.dev ? '127.0.0.1' : undefined): Promise<{ port: number }> {
    // Node takes a string that is no number as a Unix socket's path, and a port out of range only as it listens.
    if (!(Number.isInteger(port) && port >= 0 && port <= 65_535)) {
      throw new TypeError(`listen: port must be a whole number from 0 to 65535; got ${shown(port)}`)
    }
    if (host !== undefined && (typeof host !== 'string' || host === ''))
      throw new TypeError(`listen: host must be a host name or address; got ${shown(host)}`)
    if (this.#http) throw new Error('already attached to an HTTP server')
    await this.#started
    // close() came while the broker was being waited for: a server made now would be left listening.
    if (this.#state !== 'running') throw new Error('server is closed')
    // Another listen() that waited beside this one made its server first.
    if (this.#http) throw new Error('already attached to an HTTP server')
    const server = createServer((req, res) => void this.#request(req, res))
    server.keepAliveTimeout = KEEP_ALIVE_MS
    server.headersTimeout = KEEP_ALIVE_MS + 1000
    this.#attach(server)
    try {
      await new Promise<void>((resolve, reject) => {
        // close() while the port is being bound: Node then tells neither `listening` nor `error`.
        const closed = () => reject(new Error('server is closed'))
        server.once('error', reject)
        server.once('close', closed)
        server.listen(port, host, () => {
          server.off('error', reject)
          server.off('close', closed)
          resolve()
        })
      })
    } catch (error) {
      // Not listening (the port taken, the host unknown): free to listen again, elsewhere.
      server.off('upgrade', this.#onUpgrade)
      this.#http = undefined
      throw error
    }
    return { port: (server.address() as AddressInfo).port }
  }

  /**
   * Serves belfry's HTTP routes for a server it was attached to: `/healthz`,
   * `/metrics` (when on), and every path under `/api/` (`/api/notifications`,
   * `/api/admin/*`, `/api/dev/*` in dev mode; any other `/api/` path is
   * answered 404). Resolves false for any other path.
   */
  handleRequest(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    return handleHttp(req, res, this.#httpContext)
  }

  /** Sends to one user's inbox and open connections. Resolves once durable. */
  sendToUser(userId: string, notification: NotificationInput): Promise<PublishResult> {
    return this.#publishChecked({ userId }, notification)
  }

  /** Sends to several users (duplicates count once). Resolves once durable. */
  sendToUsers(userIds: readonly string[], notification: NotificationInput): Promise<PublishResult> {
    return this.#publishChecked({ userIds }, notification)
  }

  /** Sends to every user the store knows (connected, subscribed or published to before, on any process). Resolves once durable. */
  broadcast(notification: NotificationInput): Promise<PublishResult> {
    return this.#publishChecked({ broadcast: true }, notification)
  }

  /** Sends to the users subscribed to `topic`. Resolves once durable. */
  publish(topic: string, notification: NotificationInput): Promise<PublishResult> {
    return this.#publishChecked({ topic }, notification)
  }

  /**
   * Ends the user's subscriptions to `topics` now: what the topics publish from
   * here on does not reach the user (a topic the user does not follow is no
   * error). Subscriptions are checked with `authorizeSubscribe` again at each
   * auth; call this when your app revokes a grant, so that it ends at once.
   * Resolves once durable.
   */
  async unsubscribe(userId: string, topics: readonly string[]): Promise<void> {
    if (!isUserId(userId))
      throw new TypeError(`unsubscribe: userId must be a user id of 1–${MAX_ID_LENGTH} characters; got ${shown(userId)}`)
    const max = this.#options.limits.maxTopicLength
    if (!Array.isArray(topics) || !everyIndex(topics, (t) => isShortString(t, max))) {
      throw new TypeError(`unsubscribe: topics must be an array of topics of 1–${max} characters; got ${shown(topics)}`)
    }
    if (topics.length > 0) await this.#hub.store.unsubscribe(userId, topics)
  }

  /**
   * Stops accepting, closes every socket with 1001, stops the HTTP server it
   * created and closes the store. Safe to call twice; during {@link drain} it
   * closes the sockets left at once.
   */
  close(): Promise<void> {
    this.#gentle = false
    this.#cutDrain?.()
    this.#cutGrace?.()
    this.#closed ??= this.#shutdown(0)
    return this.#closed
  }

  /**
   * Closes gracefully, for a deploy: refuses new WebSocket upgrades (503) and
   * says `draining` on `/healthz` (503) so that a load balancer sends clients
   * elsewhere, closes the open sockets with 1001 in even batches over
   * `drainMs` so that they do not all reconnect in the same second, then
   * closes as {@link close} does. Publishes are still taken and delivered
   * meanwhile. With no socket open there is nothing to spread: it closes as
   * {@link close} does at once, but lets HTTP requests in flight be answered.
   * Resolves once closed.
   */
  drain(): Promise<void> {
    if (this.#closed === undefined) this.#gentle = this.#options.drainMs > 0
    this.#closed ??= this.#shutdown(this.#options.drainMs)
    return this.#closed
  }

  /** Publishes and fan-out go on during a drain. */
  get #accepting(): boolean {
    return this.#state === 'running' || this.#state === 'draining'
  }

  /**
   * Closes the sockets open now with 1001, a batch every {@link DRAIN_SLICE_MS}, ending
   * `drainMs` from now. Each batch is what is left spread over what is left of the window:
   * a timer that fires late (a busy event loop) makes the next batches a little larger, not
   * one burst of the batches it missed.
   */
  #spreadCloses(drainMs: number): Promise<void> {
    const connections = [...this.#hub.connections]
    const end = performance.now() + drainMs
    this.#hub.log.info({ connections: connections.length, drainMs }, 'draining')
    return new Promise((resolve) => {
      let closed = 0
      /**
       * Closes due and not made yet (fractional), plus ½: the i-th of n falls due at (i − ½) / n
       * of the window, so a few sockets over a long window go one by one, evenly apart.
       */
      let owed = 0.5
      let timer: NodeJS.Timeout | undefined
      /** Closes waiting for their client's ack (Connection.leave): the drain ends once they are made. */
      const leaving: Promise<void>[] = []
      const done = () => {
        this.#cutDrain = undefined
        clearTimeout(timer)
        resolve()
      }
      const slice = () => {
        const slicesLeft = Math.max(1, Math.round((end - performance.now()) / DRAIN_SLICE_MS))
        owed += (connections.length - closed - owed + 0.5) / slicesLeft
        for (; owed >= 1 - 1e-9 && closed < connections.length; owed--) {
          leaving.push(connections[closed++]!.leave(DRAIN_ACK_MS))
        }
        if (closed >= connections.length) return void Promise.all(leaving).then(done)
        timer = setTimeout(slice, DRAIN_SLICE_MS)
      }
      this.#cutDrain = done
      slice()
    })
  }

  async #shutdown(drainMs: number): Promise<void> {
    if (drainMs > 0 && this.#hub.connections.size > 0) {
      this.#state = 'draining'
      await this.#spreadCloses(drainMs)
    }
    this.#state = 'closing'
    clearInterval(this.#heartbeat)
    clearInterval(this.#sweep)
    this.#offStatus()
    const sockets = [...this.#hub.connections].map((c) => c.ws)
    for (const c of this.#hub.connections) c.close(CloseCode.GoingAway, 'server shutting down')
    await Promise.race([
      Promise.all(sockets.map((ws) => (ws.readyState === ws.CLOSED ? undefined : new Promise((r) => ws.once('close', r))))),
      new Promise((r) => setTimeout(r, SHUTDOWN_HANDSHAKE_MS).unref()),
    ])
    for (const ws of sockets) ws.terminate()
    this.#unsubscribe()
    // An app's own server lives on; a later NotificationServer may attach to it.
    this.#http?.off('upgrade', this.#onUpgrade)
    if (this.#http && !this.#options.server) {
      const server = this.#http
      await new Promise<void>((resolve) => {
        server.close(() => resolve()) // closes idle keep-alive connections too
        // A drain lets the requests in flight (a publish being committed) be answered; close(), then or during it, cuts them.
        const cut = () => server.closeAllConnections()
        if (this.#gentle) {
          const timer = setTimeout(cut, HTTP_GRACE_MS).unref()
          this.#cutGrace = () => {
            clearTimeout(timer)
            cut()
          }
        } else cut()
      })
    }
    await this.#fanningOut
    await this.#reconciling
    await Promise.all([...this.#stateReads.values()].map((read) => read.done))
    // Each step runs whichever failed before it (a broker that fails to close must not leave the database
    // open); the first failure is thrown once all have run.
    const failures: unknown[] = []
    for (const step of [
      () => this.#pruner.close(),
      () => this.#hub.broker.close(),
      () => this.#hub.store.close(),
      () => this.#hub.metrics?.stop(),
    ]) {
      await Promise.resolve()
        .then(step)
        .catch((error: unknown) => failures.push(error))
    }
    this.#state = 'closed'
    if (failures.length > 0) throw failures[0]
  }

  async #publishChecked(audience: Record<string, unknown>, notification: NotificationInput): Promise<PublishResult> {
    const a = checkAudience(audience, this.#options.limits.maxTopicLength)
    if (!a.ok) throw new TypeError(a.reason)
    const n = checkNotification(notification)
    if (!n.ok) throw new TypeError(n.reason)
    if (!this.#accepting) throw new Error('server is closed')
    return this.#publish(a.audience, n.input)
  }

  /**
   * Commits, then hands the publish to the broker: nothing is sent before it is
   * durable. Once committed it is answered for, even if the broker fails: a
   * publisher that retried would duplicate it. This process's connections get
   * it directly then; those of other processes read the store (see {@link #announce}).
   */
  async #publish(
    audience: Audience,
    input: NotificationInput,
    key?: string,
    options?: PublishOptions,
  ): Promise<PublishResult & { replayed?: boolean }> {
    const started = performance.now()
    let published: Published
    try {
      published = await this.#hub.store.publish(
        audience,
        input,
        key === undefined ? undefined : { key, ttlMs: this.#options.idempotencyKeyTtlMs },
        options,
      )
    } catch (error) {
      if (error instanceof IdempotencyKeyReusedError) throw error
      const message = (error as Error).message
      this.#storeFailure = { at: performance.now(), message }
      // It may have committed all the same (the COMMIT went through, its reply was lost): its recipients'
      // connections, on every process, read the store at the next sweep, not at their 30 s reconcile.
      this.#unannounced = true
      this.#hub.log.error({ err: error }, 'store publish failed')
      throw new UnavailableError(`the store failed: ${message}`, { cause: error })
    }
    const { notification, deliveries, recipients, pending } = published
    if (published.replayed) {
      // Stored by the key's first publish, which may have lost its answer before announcing it
      // (the commit went through, the reply did not): the audience's connections read the store.
      const catchUp = 'userIds' in audience ? audience.userIds : 'all'
      await this.#announce({ kind: 'notification', shared: '', deliveries: [], catchUp })
      return { id: notification.id, recipients, replayed: true }
    }
    this.#hub.metrics?.published(audience, deliveries.length, (performance.now() - started) / 1000)
    await this.#announce({ kind: 'notification', shared: sharedPart(notification), deliveries })
    if (pending) this.#fanOutAll()
    return { id: notification.id, recipients }
  }

  /**
   * Hands a committed change to the broker, for every process. If the broker
   * fails, this process's connections get it directly; those of other
   * processes read the store (when the broker is back this process tells them
   * to; before that, their reconcile, or the gap the next notification shows).
   */
  async #announce(...unstamped: BrokerEvent[]): Promise<void> {
    const deployment = this.#deployment
    const events = deployment === undefined ? unstamped : unstamped.map((event) => ({ ...event, deployment }))
    try {
      await this.#hub.broker.publish(events)
    } catch (error) {
      this.#hub.metrics?.brokerErrors.inc()
      this.#unannounced = true
      this.#hub.log.error({ err: error }, 'broker publish failed; delivering to this process only')
      for (const event of events) this.#route(event)
    }
  }

  /**
   * Works through pending fan-out jobs — this process's, or any other's
   * (one whose process died) — until none waits; one loop per process.
   * Each batch is announced once it is committed.
   */
  #fanOutAll(): void {
    if (!this.#accepting) return
    this.#fanningOut ??= (async () => {
      try {
        for (let batch = await this.#hub.store.fanOut(); batch; batch = await this.#hub.store.fanOut()) {
          this.#hub.metrics?.inboxEntries.inc(batch.deliveries.length)
          await this.#announce({ kind: 'notification', shared: sharedPart(batch.notification), deliveries: batch.deliveries })
          if (!this.#accepting) break
          // SQLite and the in-process broker answer at once: without a turn of the event loop between batches, a
          // broadcast to a million users would hold every other socket and request for a second or more.
          await new Promise((resolve) => setImmediate(resolve))
        }
      } catch (error) {
        // As for a publish: the batch may have committed, unannounced.
        this.#unannounced = true
        this.#hub.log.error({ err: error }, 'fan-out failed; retrying on the next sweep')
      } finally {
        this.#fanningOut = undefined
      }
    })()
  }

  /**
   * Reads the store for this process's connections: a live one behind its
   * user's latest seq (an event the broker lost) catches up. One at a time;
   * asked for while one reads (which may have read before what this one is
   * for, e.g. the broker's return), it reads once more after it.
   */
  #reconcile(): void {
    if (!this.#accepting) return
    this.#reconciledAt = performance.now()
    this.#reconcileDue = false
    if (this.#reconciling) {
      this.#reconcileAgain = true
      return
    }
    this.#reconciling = (async () => {
      try {
        do {
          this.#reconcileAgain = false
          const users = [...this.#hub.registry.userIds()]
          for (let i = 0; i < users.length; i += RECONCILE_CHUNK) await this.#readLatest(users.slice(i, i + RECONCILE_CHUNK))
        } while (this.#reconcileAgain && this.#accepting)
      } catch (error) {
        // #reconciledAt says when it started: without this, with the broker up, the next read would be 30 s away.
        this.#reconcileDue = true
        this.#hub.log.warn({ err: error }, 'reconcile failed; retrying on the next sweep')
      } finally {
        this.#reconciling = undefined
      }
    })()
  }

  /** Connections of these users (or of every user) on this process read the store for their latest seq. */
  #catchUp(userIds: readonly string[] | 'all'): void {
    if (userIds === 'all') {
      this.#reconcile()
      return
    }
    const here = userIds.filter((id) => this.#hub.registry.count(id) > 0)
    if (here.length === 0) return
    this.#readLatest(here).catch((error: unknown) => {
      // What the catch-up was for may be in no later event: the next sweep reads the store, not the 30 s one.
      this.#reconcileDue = true
      this.#hub.log.warn({ err: error }, 'catch-up failed; the next sweep reads the store')
    })
  }

  /**
   * Reads these users' latest seq and unread count from the store: their
   * connections here that are behind the seq catch up, and are told the count
   * when it moved otherwise than the seq did.
   */
  async #readLatest(userIds: readonly string[]): Promise<void> {
    const { registry, store } = this.#hub
    const latest = await store.latestSeqs(userIds)
    for (const [userId, { seq, unreadCount }] of latest) {
      for (const c of registry.of(userId)) c.replay.catchUp(seq)
      this.#sawUserState(userId, seq, unreadCount)
    }
  }

  /**
   * A user's seq and unread count as the store had them (at an auth or a read
   * of the store), against the last seen. Every new inbox entry is unread, so
   * between two reads the count grows by as much as the seq unless something
   * was marked read or pruned: a change that reached this process only if the
   * broker brought it (not when it was down, nor between processes sharing a
   * SQLite file without one). The user's connections here are told the count
   * then; told twice, when they had heard, it changes nothing. What this
   * process tells them of a change is seen too ({@link #tellState}, and a
   * change told as it came in commit order): a change it passed on is told once.
   */
  #sawUserState(userId: string, seq: number, unreadCount: number): void {
    const last = this.#seenStates.get(userId)
    this.#seenStates.set(userId, { seq, unreadCount })
    if (last && unreadCount - last.unreadCount !== seq - last.seq) this.#refreshReadState(userId)
  }

  /** Once a second: token expiry, idle budgets, fan-out jobs, and reading the store when the broker cannot be trusted. */
  #upkeep(): void {
    const now = Date.now()
    for (const [userId, told] of this.#toldRead) if (told.until <= now) this.#toldRead.delete(userId)
    for (const userId of this.#seenStates.keys()) if (this.#hub.registry.count(userId) === 0) this.#seenStates.delete(userId)
    for (const c of this.#hub.connections) c.expireBy(now)
    this.#hub.budgets.sweep()
    this.#fanOutAll()
    if (!this.#hub.broker.up || this.#reconcileDue || performance.now() - this.#reconciledAt >= RECONCILE_MS) this.#reconcile()
    this.#announceMissed()
  }

  /**
   * What this process announced while the broker failed it reached its own
   * connections only: once the broker is up (as it comes back, or at the next
   * sweep, for a publish that failed while it said it was up), the other
   * processes are told to read the store, not left to their 30 s reconcile
   * (nor to the gap something newer shows). So are all, this one too, after a
   * store write that failed and may have committed, which nothing announced.
   */
  #announceMissed(): void {
    if (!this.#unannounced || !this.#hub.broker.up) return
    this.#unannounced = false
    void this.#announce({ kind: 'notification', shared: '', deliveries: [], catchUp: 'all' })
  }

  /** Hands a broker event to this process's connections of its users. */
  #route(event: BrokerEvent): void {
    // Another deployment's (it shares the channel): its user ids and seqs are not this store's.
    if (event.deployment !== undefined && event.deployment !== this.#deployment) {
      this.#dropForeign(event.deployment)
      return
    }
    const { registry } = this.#hub
    if (event.kind === 'read') {
      // Even in commit order, a change that comes during a read of the user's state (a connection asked
      // for one) joins it: as it came, it would go out before a count that may have been read before it.
      if (this.#ordered && !this.#stateReads.has(event.userId)) {
        this.#tellAsItCame(event.userId, event.frame, event.origin)
        // Its count is the change's commit's: what the next read of the store is compared with.
        const f = this.#seenStates.has(event.userId) ? parseServerFrame(event.frame) : undefined
        if (f?.type === 'read') this.#seenStates.set(event.userId, { seq: f.seq, unreadCount: f.unreadCount })
      } else this.#readChange(event)
      return
    }
    if (event.catchUp) this.#catchUp(event.catchUp)
    let id: string | undefined
    for (const { userId, seq } of event.deliveries) {
      const connections = registry.of(userId)
      if (connections.size === 0) continue
      // Live, it is unread, unless a read change told here before its event came said otherwise.
      const told = this.#toldRead.size === 0 ? undefined : this.#toldRead.get(userId)
      if (told) id ??= (JSON.parse(`${event.shared}}`) as { id: string }).id
      const frame = notificationFrame(event.shared, seq, told !== undefined && this.#toldReadOf(told, seq, id!))
      // One encoding for all of a user's sockets; ws would otherwise encode the string per send.
      const data = connections.size > 1 ? Buffer.from(frame) : frame
      for (const c of connections) c.replay.deliver(seq, data)
    }
  }

  /**
   * Counts an event of another deployment, and warns at most once a minute (see {@link FOREIGN_WARN_MS}):
   * while the channel is shared, every event of theirs comes here. The drop is a defence, not a setup:
   * a process of theirs on an older belfry ignores the stamp and takes this one's events, so the
   * warning asks for channels apart.
   */
  #dropForeign(theirs: string): void {
    this.#hub.metrics?.foreignEvents.inc()
    const foreign = this.#foreign
    foreign.dropped++
    const now = performance.now()
    if (now - foreign.warnedAt < FOREIGN_WARN_MS) return
    this.#hub.log.warn(
      { dropped: foreign.dropped, deployment: this.#deployment ?? null, theirs },
      "broker: dropped events of another deployment on this broker's channel (Redis pub/sub ignores the database number); give each deployment its own Redis server or channel",
    )
    this.#foreign = { dropped: 0, warnedAt: now }
  }

  /** Tells a read change's frame, as it came, to the user's connections here but the one that made it. */
  #tellAsItCame(userId: string, frame: string, origin: string | undefined): void {
    for (const c of this.#hub.registry.of(userId)) if (c.id !== origin) c.tell(frame)
  }

  /**
   * A read change through a broker shared by several processes (this one's own changes come back
   * through it too), or through the in-process one while a read of its user's state is in flight.
   * Its frame holds the unread count as the store had it when the change committed, and the events
   * of several processes reach this one in no common order: as it came, the count could be older
   * than one told before, or lack a notification sent since. So the user's state is read here, and
   * the connections get that count with the latest seq it covers. One read per user at a time:
   * changes that arrive during it wait for another read after it (it may have read before they
   * committed), and go out together.
   */
  #readChange(event: BrokerEvent & { kind: 'read' }): void {
    const f = parseServerFrame(event.frame)
    // Not a read frame this process can take apart (a newer process's, a stray one): as it came.
    if (f?.type !== 'read') {
      this.#tellAsItCame(event.userId, event.frame, event.origin)
      return
    }
    const { ids, all, seq, unreadCount } = f
    this.#readState(event.userId, { ids, all: all === true, seq, unreadCount, frame: event.frame, origin: event.origin })
  }

  /**
   * A connection sent read frames it held (until `auth_success`, or a replay round's end): their
   * counts may be older than what went out before them. Its user's connections here get the count
   * read as for a change, with no ids; with the broker's own changes, in one read. Not once the
   * server is closing: close() waits for the reads in flight, not for ones after it looked.
   */
  #refreshReadState(userId: string): void {
    if (this.#accepting)
      this.#readState(userId, { ids: [], all: false, seq: 0, unreadCount: undefined, frame: undefined, origin: undefined })
  }

  /** Joins the read of the user's state in flight (which reads again after it), or starts one. */
  #readState(userId: string, change: PendingChange): void {
    const running = this.#stateReads.get(userId)
    if (running) {
      running.changes.push(change)
      running.again = true
      return
    }
    if (this.#hub.registry.count(userId) === 0) return
    const read: StateRead = { changes: [change], again: false, done: Promise.resolve() }
    this.#stateReads.set(userId, read)
    read.done = this.#readAndTell(userId, read)
  }

  async #readAndTell(userId: string, read: StateRead): Promise<void> {
    let joined = false
    try {
      for (let reads = 1; ; reads++) {
        read.again = false
        const state = await this.#hub.store.user(userId)
        if (!state) throw new Error('the user is not in the store')
        // A change joined during the read (it may have committed after it), or a notification newer
        // than what was read has been sent (or is on its way from a replay round): the count lacks it.
        // Read again, up to STALE_READS reads, while the server runs and the user has connections here.
        const stale = read.again || this.#reachedBeyond(userId, state.latestSeq)
        if (stale && reads < STALE_READS && this.#accepting && this.#hub.registry.count(userId) > 0) continue
        // Out now, in this tick: nothing newer can slip in.
        this.#tellState(userId, read.changes, state)
        joined = read.again
        break
      }
    } catch (error) {
      this.#hub.log.warn({ err: error, user: userId }, 'reading the read state failed; read changes go out with their own counts')
      if (!this.#ordered) this.#rememberRead(userId, read.changes)
      // A request for the count alone has nothing to send: the frames it follows went out already.
      for (const { frame, origin } of read.changes) if (frame !== undefined) this.#tellAsItCame(userId, frame, origin)
    } finally {
      this.#stateReads.delete(userId)
    }
    // Changes joined the last read, told with a count that may be older than they are: one more read follows.
    if (joined) this.#refreshReadState(userId)
  }

  /** Whether a connection of the user here has been sent, or will be sent by its replay round, a seq above `seq`. */
  #reachedBeyond(userId: string, seq: number): boolean {
    for (const c of this.#hub.registry.of(userId)) if (c.replay.reached > seq) return true
    return false
  }

  /**
   * Tells each connection of the user here the changes it did not make, with the count just read,
   * which covers everything up to the latest seq. A `read {all}` says what became read by its seq:
   * it keeps its own (with the new count), and a frame at the latest seq follows when that is newer
   * or other ids became read. The connection that made a change gets the count alone, when it was
   * sent a later seq: its reply carried the count of the change's commit, and with several
   * processes a notification committed after it may have gone out before the reply.
   */
  #tellState(userId: string, changes: readonly PendingChange[], state: UserState): void {
    if (!this.#ordered) this.#rememberRead(userId, changes)
    // What the user's connections here are told now: the count the next read of the store is compared with. A
    // connection left with its own change's count (its reply's) knows the commit's, not this read's: a change
    // made elsewhere in between is in the read, and would look told. The commit's pair is the baseline then.
    let seen = { seq: state.latestSeq, unreadCount: state.unreadCount }
    for (const c of this.#hub.registry.of(userId)) {
      // Sent above the seq read (only when the reads stopped while stale): those went out live,
      // `read: false`, and the client counted each; so does the count it is told.
      const seq = Math.max(state.latestSeq, c.replay.sentSeq)
      const unreadCount = state.unreadCount + seq - state.latestSeq
      let all: number | undefined
      const ids = new Set<string>()
      let theirs = false
      // Its own changes: their counts are behind only if the socket was sent a later seq than the latest they
      // cover (maybe before the reply). A bounded read {all}'s reply is followed by a count at the latest seq.
      let own = -1
      for (const change of changes) {
        if (change.origin === c.id) {
          own = Math.max(own, change.seq)
          continue
        }
        theirs = true
        if (change.all) all = Math.max(all ?? 0, change.seq)
        else for (const id of change.ids) ids.add(id)
      }
      if (own >= 0 && c.replay.sentSeq > own) theirs = true
      if (!theirs) {
        for (const { origin, seq, unreadCount } of changes) if (origin === c.id && unreadCount !== undefined) seen = { seq, unreadCount }
        continue
      }
      if (all !== undefined) c.tell(frame({ type: 'read', ids: [], all: true, seq: all, unreadCount }))
      if (all === undefined || ids.size > 0 || seq > all) c.tell(frame({ type: 'read', ids: [...ids], all: false, seq, unreadCount }))
    }
    this.#seenStates.set(userId, seen)
  }

  /**
   * Several processes: a notification read on another process before its own event reached this
   * one comes after the change that named it. Its frame says read then (see {@link #route}).
   */
  #rememberRead(userId: string, changes: readonly PendingChange[]): void {
    // A request for the count, or retention's lower count, made nothing read: nothing to keep.
    if (!changes.some((change) => change.all || change.ids.length > 0)) return
    let told = this.#toldRead.get(userId)
    if (!told) {
      told = { all: 0, allUntil: 0, ids: new Map(), until: 0 }
      this.#toldRead.set(userId, told)
    }
    const until = Date.now() + LATE_READ_MS
    told.until = until
    for (const change of changes) {
      if (change.all) {
        told.all = Math.max(told.all, change.seq)
        told.allUntil = until
      }
      for (const id of change.ids) {
        told.ids.delete(id) // to the end: the newest
        told.ids.set(id, until)
        if (told.ids.size > LATE_READ_IDS) told.ids.delete(told.ids.keys().next().value!)
      }
    }
  }

  /** Whether a read change told here lately made this notification of the user read. */
  #toldReadOf(told: ToldRead, seq: number, id: string): boolean {
    const now = Date.now()
    return (seq <= told.all && told.allUntil > now) || (told.ids.get(id) ?? 0) > now
  }

  #attach(server: HttpServer): void {
    this.#http = server
    server.on('upgrade', this.#onUpgrade)
  }

  readonly #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => this.#upgrade(req, socket, head)

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    // On a server that belongs to the app, other paths may be the app's own WebSocket endpoints: left to its own
    // `upgrade` listener, when it has one. Without, nothing else would answer (Node hands an upgrade to those
    // listeners only, not to the request handler), and the socket, out of the server's timeouts, would stay open.
    if (!WS_PATHS.has(path) && (this.#options.server?.listenerCount('upgrade') ?? 0) > 1) return
    // (No header at all: past Node's count of headers kept, as in CVE-2024-37890's request; ws refuses it.)
    const upgrade = req.headers.upgrade
    if (upgrade !== undefined && upgrade.toLowerCase() !== 'websocket') {
      this.#withoutUpgrade(req, socket, head)
      return
    }
    socket.on('error', destroy)
    // Draining or closing: 503, so that the client (or the load balancer) tries another process. Dev mode's secret
    // is published: a page of another origin could sign a token for any user itself, so the socket is fenced as the
    // dev routes are (403).
    const fenced = this.#options.dev ? devRefusal(req.headers, req.socket.remoteAddress) : undefined
    const refused =
      this.#state !== 'running' ? '503 Service Unavailable' : !WS_PATHS.has(path) ? '404 Not Found' : fenced && '403 Forbidden'
    if (refused) {
      if (refused === '403 Forbidden') this.#tellFence(fenced!)
      // Destroyed once the answer is written, as ws refuses a handshake: an upgrade's socket is out of the HTTP
      // server's timeouts and closeAllConnections(), so a peer that never closed its half would hold close() for ever.
      socket.once('finish', socket.destroy)
      socket.end(`HTTP/1.1 ${refused}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
      return
    }
    // Read before the callback: a closure over `req` would keep the request alive with the connection.
    const origin = req.headers.origin ?? ''
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, origin, socket))
  }

  /**
   * A request that asks to upgrade to a protocol other than WebSocket (`curl --http2` sends `Upgrade: h2c` with
   * every request) is served as the HTTP/1.1 request it also is: a server may ignore the header (RFC 9110 §7.8).
   * Node has handed the socket over already, so the request goes back into it without the header, and the HTTP
   * server parses it afresh, as a new connection.
   */
  #withoutUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Pipelined behind a request not yet answered: the new parser would queue its answer where no one looks for it.
    // It waits for that answer (Node's own record of it on the socket; the socket is paused meanwhile).
    const answering = (socket as { _httpMessage?: ServerResponse | null })._httpMessage
    if (answering) {
      answering.once('close', () => setImmediate(() => !socket.destroyed && socket.writable && this.#withoutUpgrade(req, socket, head)))
      return
    }
    const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`]
    const raw = req.rawHeaders
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase()
      // `Connection` keeps its other options (`close`).
      const value =
        name === 'connection' ? raw[i + 1]!.split(',').filter((o) => !UPGRADE_HEADERS.has(o.trim().toLowerCase())) : [raw[i + 1]]
      if (!UPGRADE_HEADERS.has(name) && value.length > 0) lines.push(`${raw[i]}: ${value.join(',')}`)
    }
    socket.unshift(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), head]))
    // An HTTPS server's HTTP side listens for sockets whose TLS is set up; `connection` would start TLS again.
    this.#http!.emit(this.#http instanceof TlsServer ? 'secureConnection' : 'connection', socket)
  }

  /** A browser shows the fenced page a bare 1006, no status and no reason: the terminal says why, once for each reason. */
  #tellFence(reason: string): void {
    if (this.#fenceTold.has(reason) || this.#fenceTold.size >= FENCE_REASONS_TOLD) return
    this.#fenceTold.add(reason)
    this.#hub.log.warn(
      { reason },
      'dev mode refused a WebSocket handshake (the page sees close code 1006): serve the page and /ws from one origin, e.g. through your dev server\'s proxy (README: "Using it from another origin")',
    )
  }

  #accept(ws: WebSocket, origin: string, socket: Duplex): void {
    // Sockets that never authenticate each hold memory for authTimeoutMs: bound how many may.
    // Past the bound the oldest goes, not the newcomer: a flood of idle sockets then evicts its
    // own, while a real client, which authenticates within milliseconds, gets through. Only a
    // handshake that made a socket counts: one refused (400) costs the waiting sockets nothing.
    const { unauthenticated } = this.#hub
    if (unauthenticated.size >= this.#options.limits.maxUnauthenticated) {
      const oldest = unauthenticated.values().next().value
      oldest?.close(CloseCode.AuthTimeout, 'auth timeout')
      oldest?.ws.terminate()
    }
    this.#hub.metrics?.connects.inc()
    const connection = new Connection(ws, this.#hub, socket)
    const origins = this.#options.allowedOrigins
    if (origins.size > 0 && !origins.has(origin)) connection.close(CloseCode.Forbidden, 'origin not allowed')
  }

  async #request(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (await this.handleRequest(req, res)) return
      // Answered before the body's end (a 404, a file): what is left of the body gets bodyTimeoutMs from the answer, not Node's 300 s.
      res.once('finish', () => boundBody(req, this.#httpContext.bodyTimeoutMs))
      if (this.#options.fallback) this.#options.fallback(req, res)
      else sendJson(res, 404, { error: 'not_found', message: 'not found' })
    } catch (error) {
      this.#hub.log.error({ err: error }, 'request failed')
      if (!res.headersSent) sendJson(res, 500, { error: 'internal', message: 'internal error' })
      else res.destroy()
    }
  }

  /**
   * One timer for all sockets: each connection pings, or gives up on a socket that missed the last ping. In
   * slices of {@link HEARTBEAT_SLICE}, a turn of the event loop each: 10,000 sockets in one loop held every
   * other event (a publish, an auth, a delivery) for about 150 ms. One closed meanwhile is skipped.
   */
  #beat(): void {
    const all = [...this.#hub.connections]
    const slice = (from: number): void => {
      const to = Math.min(from + HEARTBEAT_SLICE, all.length)
      for (let i = from; i < to; i++) if (this.#hub.connections.has(all[i]!)) all[i]!.heartbeat()
      if (to < all.length) setImmediate(slice, to)
    }
    slice(0)
  }
}
