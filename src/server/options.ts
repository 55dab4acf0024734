import type { Server as HttpServer } from 'node:http'
import type { Logger } from 'pino'
import { MAX_TOPIC_LENGTH } from '../protocol/index.js'
import type { Broker } from './broker/broker.js'
import { BEARER_KEY_RULE, DEV_API_KEY, DEV_SECRET, isBearerKey, isDevValue, keyShape } from './config.js'
import { STORE_OPERATIONS, type Store } from './store/store.js'

/** Options of {@link NotificationServer}. Every field but `secret` has a default. */
export interface ServerOptions {
  /** HS256 secret that user tokens are signed with (at least 16 characters). */
  secret: string
  /** Bearer key for `POST /api/notifications`. Without one, the HTTP publish API answers 401. */
  apiKey?: string | undefined
  /** SQLite file for the embedded store, when no `store` is given. @default './belfry.db' */
  database?: string | undefined
  /** A store to use instead of the embedded SQLite one. */
  store?: Store | undefined
  /** A broker to use instead of the in-process one. */
  broker?: Broker | undefined
  /**
   * An existing HTTP server to attach to: belfry handles its WebSocket
   * upgrades and serves its API routes, leaving other requests alone.
   * Without it, {@link NotificationServer.listen} creates one.
   */
  server?: HttpServer | undefined
  /** Origins allowed to open a WebSocket; others are closed with 4003. Empty allows all. @default [] */
  allowedOrigins?: string[] | undefined
  /**
   * Dev mode: `GET /api/dev/token?user=ID` mints a token for any user. Never for production. Only with the
   * published dev secrets as `secret` and `apiKey` (`DEV_SECRET`, `DEV_API_KEY`); `listen()` without a host
   * then listens on 127.0.0.1. @default false
   */
  dev?: boolean | undefined
  /** Structured logger. @default a pino logger at level 'info' */
  logger?: Logger | undefined
  /** Resource limits. */
  limits?: { [K in keyof Limits]?: Limits[K] | undefined } | undefined
  /**
   * Decides whether a user may subscribe to a topic; `claims` is the verified
   * token's payload. Without it any authenticated user may subscribe to any
   * topic. Stored subscriptions are checked again at every auth, so a revoked
   * grant stops delivery. {@link topicsClaim} makes one from a token claim.
   */
  authorizeSubscribe?: SubscribeAuthorizer | undefined
  /**
   * Prometheus metrics on `GET /metrics`, behind a bearer token: `token` (at
   * least 8 characters; not a published dev secret unless `dev`), or with
   * `true` the API key. Off (404) unless given. @default false
   */
  metrics?: boolean | { token: string } | undefined
  /**
   * How long {@link NotificationServer.drain} spreads its 1001 closes over, in ms, so that the
   * clients do not all come back in the same second; 0 closes them all at once. @default 5000
   */
  drainMs?: number | undefined
  /**
   * Called for HTTP requests that belfry does not answer (only when it owns the server). The rest
   * of a body it has not read when it answers must arrive within `limits.bodyTimeoutMs` of the answer.
   */
  fallback?: ((req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void) | undefined
  /**
   * How long each inbox keeps its notifications. A pruner removes, in small
   * batches in the background, every user's entries older than `days` and
   * all but the newest `maxPerUser`: always the oldest, so an inbox never
   * has a hole. @default keep everything
   */
  retention?: Retention | undefined
  /**
   * How long the store remembers a publish's `Idempotency-Key` (and the
   * answer it replays for it), in ms from the publish that used it first.
   * Past it the key is forgotten: a retry stores the notification again.
   * Expired keys are removed by later keyed publishes, a bounded batch each.
   * @default 86400000 (24 hours)
   */
  idempotencyKeyTtlMs?: number | undefined
}

/** Inbox retention (see {@link ServerOptions.retention}): at least one of the two. */
export interface Retention {
  /** Entries older than this many days go (a fraction is allowed). */
  days?: number | undefined
  /** Each user keeps at most this many entries: the newest. */
  maxPerUser?: number | undefined
}

/** Whether `userId` (whose verified token carried `claims`) may subscribe to `topic`. */
export type SubscribeAuthorizer = (userId: string, topic: string, claims: Readonly<Record<string, unknown>>) => boolean | Promise<boolean>

/** Limits the server enforces, per connection or per user (per process: see budget.ts). */
export interface Limits {
  /** Largest inbound frame, in bytes; larger closes with 1009. @default 65536 */
  maxFrameBytes: number
  /** Time allowed for the auth frame after connecting, in ms. @default 10000 */
  authTimeoutMs: number
  /** Interval between WebSocket pings; a connection that has not answered the previous one is terminated. @default 25000 */
  heartbeatMs: number
  /** Bytes waiting to be sent to one connection before it is closed with 4009. @default 1048576 */
  maxBufferedBytes: number
  /** Largest frame accepted before auth, in bytes (room for the largest token); a larger one is refused unparsed as a token too large (`auth_error` `token_invalid`, close 4001). @default 16384 */
  maxAuthFrameBytes: number
  /** Inbound frames allowed per second per user, over all its connections (token bucket refill). @default 20 */
  ratePerSecond: number
  /** Inbound burst allowed per user, over all its connections (token bucket size). @default 60 */
  rateBurst: number
  /** Bytes per second a user's replay rounds and history pages may make the server send; past it the next one waits. @default 2097152 */
  sendBytesPerSecond: number
  /** Burst of those bytes (a reconnect catching up on a backlog of this size is not slowed). @default 16777216 */
  sendBurstBytes: number
  /** Topics one user may be subscribed to; more are refused with `too_many_subscriptions`. @default 200 */
  maxSubscriptionsPerUser: number
  /** Longest topic name, in characters (at most 256); longer is refused (`topic_too_long`, or 400 on publish). @default 128 */
  maxTopicLength: number
  /** Open connections allowed per user; more are closed with 4029. @default 100 */
  maxConnectionsPerUser: number
  /** Malformed frames in a row before the connection is closed with 4000; before auth, the most frames of any kind (the auth frame counts). @default 10 */
  maxBadFrames: number
  /** Notifications sent per replay round before the client must ask for more. @default 500 */
  replayBatch: number
  /** Largest HTTP request body, in bytes; larger answers 413. @default 65536 */
  maxBodyBytes: number
  /** Time an HTTP request body may take to arrive, in ms; slower answers 408. @default 10000 */
  bodyTimeoutMs: number
  /** Sockets allowed to wait for their auth frame at once, over all users; past it the oldest is closed (4008). @default 10000 */
  maxUnauthenticated: number
}

/** The limits used when none are given. */
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxFrameBytes: 64 * 1024,
  authTimeoutMs: 10_000,
  heartbeatMs: 25_000,
  maxBufferedBytes: 1024 * 1024,
  maxAuthFrameBytes: 16 * 1024,
  ratePerSecond: 20,
  rateBurst: 60,
  sendBytesPerSecond: 2 * 1024 * 1024,
  sendBurstBytes: 16 * 1024 * 1024,
  maxSubscriptionsPerUser: 200,
  maxTopicLength: 128,
  maxConnectionsPerUser: 100,
  maxBadFrames: 10,
  replayBatch: 500,
  maxBodyBytes: 64 * 1024,
  bodyTimeoutMs: 10_000,
  maxUnauthenticated: 10_000,
})

/** Options after defaults are applied. */
export interface ResolvedOptions
  extends Omit<
    ServerOptions,
    'limits' | 'allowedOrigins' | 'dev' | 'database' | 'metrics' | 'retention' | 'drainMs' | 'idempotencyKeyTtlMs'
  > {
  database: string
  /** The bearer token of `/metrics`; undefined while metrics are off. */
  metrics: { token: string } | undefined
  drainMs: number
  allowedOrigins: ReadonlySet<string>
  dev: boolean
  limits: Readonly<Limits>
  /** Undefined: keep everything. */
  retention: Readonly<Retention> | undefined
  idempotencyKeyTtlMs: number
}

/** The longest retention in days: a hundred years. */
export const MAX_RETENTION_DAYS = 36_500
/** The drain window when none is given, in ms. */
const DEFAULT_DRAIN_MS = 5000

/** How long an idempotency key is remembered when no `idempotencyKeyTtlMs` is given: 24 hours. */
const DEFAULT_IDEMPOTENCY_KEY_TTL_MS = 86_400_000
/** The longest an idempotency key may be remembered: a year. */
export const MAX_IDEMPOTENCY_KEY_TTL_MS = 365 * 86_400_000

/** setTimeout's largest delay (2^31 - 1 ms): the bound of every option that is a timer's. */
export const MAX_TIMER_MS = 2 ** 31 - 1
const TIMER_LIMITS: ReadonlySet<string> = new Set(['authTimeoutMs', 'heartbeatMs', 'bodyTimeoutMs'])

/** A value as an option's TypeError shows it: a string quoted (a secret only by its length), anything else by its kind. */
export function shown(value: unknown, secret = false): string {
  if (typeof value === 'string')
    return secret ? `a string of ${value.length} characters` : JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)
  if (value === null || value === undefined || typeof value === 'number' || typeof value === 'boolean') return String(value)
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}

/**
 * A retention setting, checked (TypeErrors name it as `name`): undefined when
 * nothing is to be pruned. The admin API checks a prune request's body with it.
 */
export function resolveRetention(value: unknown, name = 'options.retention'): Readonly<Retention> | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`${name} must be an object { days?, maxPerUser? }, got ${shown(value)}`)
  }
  const { days, maxPerUser, ...rest } = value as Record<string, unknown>
  const unknown = Object.keys(rest)
  if (unknown.length > 0) throw new TypeError(`${name}.${unknown[0]} is not a retention setting (days, maxPerUser)`)
  if (days !== undefined && !(typeof days === 'number' && days > 0 && days <= MAX_RETENTION_DAYS)) {
    throw new TypeError(`${name}.days must be a number of days > 0 and ≤ ${MAX_RETENTION_DAYS}, got ${shown(days)}`)
  }
  if (maxPerUser !== undefined && !(Number.isSafeInteger(maxPerUser) && (maxPerUser as number) >= 1)) {
    throw new TypeError(`${name}.maxPerUser must be a whole number ≥ 1, got ${shown(maxPerUser)}`)
  }
  if (days === undefined && maxPerUser === undefined) return undefined
  return Object.freeze({ ...(days !== undefined && { days }), ...(maxPerUser !== undefined && { maxPerUser: maxPerUser as number }) })
}

/**
 * The origin a URL names, as a browser's Origin header says it; undefined for a string that is no URL. A scheme the
 * URL standard does not know (a browser extension's `chrome-extension://<id>`, an app's `tauri://localhost`) has no
 * serialized origin ("null"), and its pages send `scheme://host` as it is: an entry of that shape is its own.
 */
function originOf(url: string): string | undefined {
  try {
    const { origin } = new URL(url)
    if (origin !== 'null') return origin
    return /^[a-z][a-z0-9+.-]*:\/\/[^/?#\s]+$/.test(url) ? url : undefined
  } catch {
    return undefined
  }
}

/** What a `logger` option must have: pino's, or one of its own with these. */
export const LOGGER_METHODS = ['debug', 'info', 'warn', 'error'] as const

/** Throws a TypeError naming the option `name` when `value` is given but lacks one of `methods`. */
export function requireMethods(value: unknown, name: string, methods: readonly string[]): void {
  if (value === undefined) return
  const missing = methods.filter((m) => typeof (value as Record<string, unknown> | null)?.[m] !== 'function')
  if (typeof value !== 'object' || value === null) {
    throw new TypeError(`${name} must be an object with ${methods.join(', ')} methods; got ${shown(value)}`)
  }
  if (missing.length > 0) {
    throw new TypeError(`${name} must be an object with ${methods.join(', ')} methods; got one without ${missing.join(', ')}`)
  }
}

/** Every key of {@link ServerOptions}: another is a mistake (a typo would otherwise be ignored). */
const OPTION_KEYS: ReadonlySet<string> = new Set<keyof ServerOptions>([
  'secret',
  'apiKey',
  'database',
  'store',
  'broker',
  'server',
  'allowedOrigins',
  'dev',
  'logger',
  'limits',
  'authorizeSubscribe',
  'metrics',
  'drainMs',
  'fallback',
  'retention',
  'idempotencyKeyTtlMs',
])

/** Applies defaults and checks every option, throwing a `TypeError` that names a bad one. */
export function resolveOptions(options: ServerOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError(`options must be an object; got ${shown(options)}`)
  const unknown = Object.keys(options).find((key) => !OPTION_KEYS.has(key))
  if (unknown !== undefined)
    throw new TypeError(`options.${unknown} is not an option of NotificationServer (${[...OPTION_KEYS].join(', ')})`)
  if (typeof options.secret !== 'string' || options.secret.length < 16) {
    throw new TypeError(`options.secret must be a string of at least 16 characters; got ${shown(options.secret, true)}`)
  }
  if (options.apiKey !== undefined && (typeof options.apiKey !== 'string' || !isBearerKey(options.apiKey))) {
    const got = typeof options.apiKey === 'string' ? `a string of ${keyShape(options.apiKey)}` : shown(options.apiKey)
    throw new TypeError(`options.apiKey must be a string of ${BEARER_KEY_RULE} (a bearer token); got ${got}`)
  }
  if (options.database !== undefined && (typeof options.database !== 'string' || options.database === '')) {
    throw new TypeError(`options.database must be a file path; got ${shown(options.database)}`)
  }
  const origins = options.allowedOrigins ?? []
  if (!Array.isArray(origins) || !origins.every((o) => typeof o === 'string')) {
    throw new TypeError(
      `options.allowedOrigins must be an array of origin strings; got ${Array.isArray(origins) ? `an array with ${shown(origins.find((o) => typeof o !== 'string'))}` : shown(origins)}`,
    )
  }
  // Compared with the Origin header as they are: an entry that is no origin as browsers send it (a trailing
  // slash, a path, upper case) would match no page, and refuse every page of that origin with 4003.
  for (const o of origins) {
    const origin = originOf(o)
    if (origin !== o) {
      throw new TypeError(
        `options.allowedOrigins must hold origins as browsers send them (scheme://host[:port], lower case, no path); got ${shown(o)}${origin ? `: did you mean "${origin}"?` : ''}`,
      )
    }
  }
  if (options.dev !== undefined && typeof options.dev !== 'boolean')
    throw new TypeError(`options.dev must be a boolean; got ${shown(options.dev)}`)
  // Dev mode mints a token for any user and hands out the API key: on the published dev secrets
  // only, so that nothing it mints is valid on a server with real ones.
  if (options.dev === true && (options.secret !== DEV_SECRET || options.apiKey !== DEV_API_KEY)) {
    const wrong = [
      ...(options.secret === DEV_SECRET ? [] : [`options.secret is ${shown(options.secret, true)}`]),
      ...(options.apiKey === DEV_API_KEY ? [] : [`options.apiKey is ${shown(options.apiKey, true)}`]),
    ]
    throw new TypeError(
      `options.dev is true: options.secret must be "${DEV_SECRET}" and options.apiKey "${DEV_API_KEY}" (the published dev secrets, so that nothing dev mode mints is valid elsewhere); ${wrong.join(' and ')}`,
    )
  }
  if (options.dev !== true && (isDevValue(options.secret) || isDevValue(options.apiKey))) {
    throw new TypeError('options.secret and options.apiKey must not be the published dev secrets unless options.dev is true')
  }
  if (options.fallback !== undefined && typeof options.fallback !== 'function') {
    throw new TypeError(`options.fallback must be a function (req, res); got ${shown(options.fallback)}`)
  }
  if (options.authorizeSubscribe !== undefined && typeof options.authorizeSubscribe !== 'function') {
    throw new TypeError(
      `options.authorizeSubscribe must be a function (userId, topic, claims) => boolean; got ${shown(options.authorizeSubscribe)}`,
    )
  }
  const metrics = resolveMetrics(options)
  const drainMs = options.drainMs ?? DEFAULT_DRAIN_MS
  if (!Number.isSafeInteger(drainMs) || drainMs < 0 || drainMs > MAX_TIMER_MS) {
    throw new TypeError(`options.drainMs must be a whole number of ms from 0 to ${MAX_TIMER_MS}; got ${shown(options.drainMs)}`)
  }
  const idempotencyKeyTtlMs = options.idempotencyKeyTtlMs ?? DEFAULT_IDEMPOTENCY_KEY_TTL_MS
  if (!Number.isSafeInteger(idempotencyKeyTtlMs) || idempotencyKeyTtlMs < 1 || idempotencyKeyTtlMs > MAX_IDEMPOTENCY_KEY_TTL_MS) {
    throw new TypeError(
      `options.idempotencyKeyTtlMs must be a whole number of ms from 1 to ${MAX_IDEMPOTENCY_KEY_TTL_MS}, got ${shown(options.idempotencyKeyTtlMs)}`,
    )
  }
  requireMethods(options.logger, 'options.logger', LOGGER_METHODS)
  requireMethods(options.store, 'options.store', [...STORE_OPERATIONS, 'close'])
  requireMethods(options.broker, 'options.broker', ['publish', 'subscribe', 'ready', 'onStatus', 'close'])
  requireMethods(options.server, 'options.server', ['on', 'off'])
  if (options.limits !== undefined && (typeof options.limits !== 'object' || options.limits === null)) {
    throw new TypeError(`options.limits must be an object; got ${shown(options.limits)}`)
  }
  const limits: Limits = { ...DEFAULT_LIMITS }
  for (const [key, value] of Object.entries(options.limits ?? {})) {
    if (!Object.hasOwn(DEFAULT_LIMITS, key)) throw new TypeError(`options.limits.${key} is not a known limit`)
    if (value === undefined) continue // given as undefined: not given
    if (!Number.isSafeInteger(value) || (value as number) <= 0) {
      throw new TypeError(`options.limits.${key} must be a positive integer; got ${shown(value)}`)
    }
    // setTimeout and setInterval turn longer delays into 1 ms.
    if (TIMER_LIMITS.has(key) && (value as number) > MAX_TIMER_MS) {
      throw new TypeError(`options.limits.${key} must be at most ${MAX_TIMER_MS} ms; got ${shown(value)}`)
    }
    limits[key as keyof Limits] = value as number
  }
  if (limits.maxTopicLength > MAX_TOPIC_LENGTH)
    throw new TypeError(`options.limits.maxTopicLength must be at most ${MAX_TOPIC_LENGTH}; got ${limits.maxTopicLength}`)
  const retention = resolveRetention(options.retention)
  return {
    ...options,
    database: options.database ?? './belfry.db',
    drainMs,
    allowedOrigins: new Set(origins),
    dev: options.dev === true,
    metrics,
    limits: Object.freeze(limits),
    retention,
    idempotencyKeyTtlMs,
  }
}

/** `metrics`: off, or on with the bearer token that guards /metrics (its own, or with `true` the API key). */
function resolveMetrics({ metrics, apiKey, dev }: ServerOptions): { token: string } | undefined {
  if (metrics === undefined || metrics === false) return undefined
  if (metrics === true) {
    if (apiKey === undefined) {
      throw new TypeError(
        'options.metrics is true (/metrics behind the API key) but options.apiKey is not given: give one, or metrics: { token }',
      )
    }
    return { token: apiKey }
  }
  const object = typeof metrics === 'object' && metrics !== null
  const token: unknown = object ? metrics.token : undefined
  if (typeof token === 'string' && isBearerKey(token)) {
    // Published: anyone could scrape with it (the API key and the secret are refused the same way).
    if (dev !== true && isDevValue(token)) {
      throw new TypeError('options.metrics.token must not be a published dev secret unless options.dev is true')
    }
    return { token }
  }
  // A token is a secret (and a string given here may be one): never show it.
  const got =
    typeof token === 'string'
      ? `a token of ${keyShape(token)}`
      : object
        ? `{ token: ${typeof token} }`
        : /^[sf]/.test(typeof metrics)
          ? `a ${typeof metrics}`
          : String(metrics)
  throw new TypeError(`options.metrics must be true, false or { token } with a token of ${BEARER_KEY_RULE}; got ${got}`)
}
