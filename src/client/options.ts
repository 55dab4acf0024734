import { isObject } from '../protocol/guards.js'
import { type BackoffOptions, fullJitter } from './backoff.js'
import type { ConnectionFactory } from './link.js'
import { type CursorStorage, defaultStorage, memoryStorage } from './storage.js'

/** A value, or a function that yields it (sync or async); called on every connect. */
export type Provider<T> = T | (() => T | Promise<T>)

/** The socket events belfry listens to. */
export type SocketEvent = 'open' | 'close' | 'message' | 'error'

/** What belfry uses of a socket: the browser's WebSocket and `ws`'s both have it. */
export interface SocketLike {
  readonly readyState: number
  send(data: string): void
  close(code?: number, reason?: string): void
  addEventListener(type: SocketEvent, listener: (event: unknown) => void): void
  removeEventListener(type: SocketEvent, listener: (event: unknown) => void): void
}

/** A WebSocket constructor: the browser's, or the `ws` package's default export in Node. */
export type WebSocketLike = new (url: string, protocols?: string | string[]) => SocketLike

/** Options of {@link NotificationClient}. Only `url` and `token` are required. */
export interface ClientOptions {
  /** WebSocket URL of the server, e.g. `wss://example.com/ws`, or a function that yields it. */
  url: Provider<string>
  /** User token (HS256 JWT), or a function that yields a fresh one; called on every connect, one call at a time (one not answered within `connectTimeout` is given up: the retry asks afresh). */
  token: Provider<string>
  /** WebSocket constructor. @default globalThis.WebSocket (pass `ws` in Node 20) */
  WebSocket?: WebSocketLike | undefined
  /** Where the cursor is kept; `false` keeps it in memory. @default localStorage in browsers, memory elsewhere */
  storage?: CursorStorage | false | undefined
  /**
   * Backoff shape, or a function from the attempt (0-based) to a delay in ms,
   * held to [0, 2^31-1] (setTimeout's range; NaN and Infinity wait 2^31-1 ms,
   * about 25 days). @default { initial: 500, factor: 2, max: 30000 }
   */
  backoff?: { [K in keyof BackoffOptions]?: BackoffOptions[K] | undefined } | ((attempt: number) => number) | undefined
  /** Random source for the jitter (for tests). @default Math.random */
  random?: (() => number) | undefined
  /** Time a connection must stay online before the attempt count resets, in ms. @default 5000 */
  minUptime?: number | undefined
  /** Time allowed to open the socket and authenticate, in ms, from 1 to 2^31-1. @default 10000 */
  connectTimeout?: number | undefined
  /** Time a request waits for its reply, in ms, from 1 to 2^31-1. @default 10000 */
  requestTimeout?: number | undefined
  /** Requests that may wait for the connection; more reject with a `RequestError`. @default 50 */
  maxQueue?: number | undefined
  /**
   * Delay before the cumulative ack of delivered notifications is sent, in ms,
   * to a server that does not ack by its heartbeat (no `auth_success.pingAcks`:
   * belfry 0.1, or another server of the protocol). @default 1000
   */
  ackDelay?: number | undefined
  /** Interval of app-level pings while online, in ms, from 1 to 2^31-1. @default 25000 */
  pingInterval?: number | undefined
  /** Time to wait for a pong before the connection is taken for dead, in ms, from 1 to 2^31-1. @default 10000 */
  pongTimeout?: number | undefined
  /** React to the browser's online/offline and visibility events. @default true */
  watchNetwork?: boolean | undefined
  /**
   * How this client reaches the server. `sharedConnection()` from
   * `belfry/shared` shares one socket among the user's tabs.
   * @default one socket for this client
   */
  connection?: ConnectionFactory | undefined
}

/** Options after defaults: every one present, none undefined. */
export type ResolvedClientOptions = {
  [K in Exclude<keyof ClientOptions, 'backoff' | 'storage' | 'random' | 'connection'>]-?: Exclude<ClientOptions[K], undefined>
} & {
  storage: CursorStorage
  backoff: (attempt: number) => number
  connection: ConnectionFactory | undefined
}

/** The options that are numbers (delays in ms, and one count), with their defaults. */
const NUMBERS = {
  minUptime: 5000,
  connectTimeout: 10_000,
  requestTimeout: 10_000,
  maxQueue: 50,
  ackDelay: 1000,
  pingInterval: 25_000,
  pongTimeout: 10_000,
}

/** A delay or a count: `min` (0 unless given) up to setTimeout's limit (NaN fails). */
const isNumber = (v: unknown, min = 0) => (v as number) >= min && (v as number) < 2 ** 31 && typeof v === 'number'
export const isFunction = (v: unknown) => typeof v === 'function'
/** A value as a TypeError shows it: a string quoted, an object or function by its type. */
export const show = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : v && /^[of]/.test(typeof v) ? typeof v : String(v))

/**
 * The URL a WebSocket constructor accepts, or undefined: absolute (resolved
 * against the page), ws(s) (http(s) mapped), no fragment. A URL the
 * constructor throws on would do so inside reconnecting-websocket, where
 * nothing can catch it.
 */
export function wsUrl(url: unknown): string | undefined {
  try {
    const u = new URL(url as string, globalThis.location?.href)
    u.hash = ''
    if (typeof url === 'string' && /^(ws|http)s?:$/.test(u.protocol)) return u.href.replace(/^http/, 'ws')
  } catch {}
}

/**
 * Applies defaults (an option given as undefined is one not given) and
 * throws a `TypeError` that names the first bad option, what it got and what
 * it expects.
 */
export function resolveClientOptions(o: ClientOptions): ResolvedClientOptions {
  const {
    url,
    token,
    WebSocket: WS = globalThis.WebSocket,
    storage: s = defaultStorage(),
    backoff: b = {},
    random = Math.random,
    watchNetwork = true,
    connection,
  } = o
  const numbers = {} as typeof NUMBERS
  // A function has none of these (nor has null, 0 or '': the check below refuses those).
  const { initial = 500, factor = 2, max = 30_000 } = (b || 0) as Partial<BackoffOptions>
  /** An option that fails was given (a default passes): the message shows what was given. */
  const check = (key: string, ok: unknown, expected: string) => {
    if (!ok) throw new TypeError(`belfry: options.${key} must be ${expected}; got ${show(o[key as keyof ClientOptions])}`)
  }
  check('url', isFunction(url) || wsUrl(url), 'a ws(s): or http(s): URL (absolute outside a page) or a function yielding one')
  check('token', isFunction(token) || (typeof token === 'string' && token), 'a non-empty string or a function yielding one')
  // One has the ready states as statics. reconnecting-websocket refuses one without (CLOSING === 2) in a promise
  // nothing can catch, and ws's WebSocketServer or a class of one's own is a function too.
  check('WebSocket', isFunction(WS) && (WS as { CLOSING?: unknown }).CLOSING === 2, 'a WebSocket constructor (`ws` in Node 20)')
  check('storage', s === false || (isFunction(s?.getItem) && isFunction(s.setItem)), 'false or { getItem, setItem }')
  // The bound min(max, initial × factor^attempt) must grow to 100 ms: retries never spin at 0 ms.
  check(
    'backoff',
    isFunction(b) || (isObject(b) && isNumber(initial, 1) && isNumber(max, 100) && (factor > 1 || (factor === 1 && initial >= 100))),
    'a function or { initial, factor, max } reaching 100 ms',
  )
  check('random', isFunction(random), 'a function')
  check('watchNetwork', typeof watchNetwork === 'boolean', 'a boolean')
  check('connection', !connection || isFunction(connection), 'a function')
  for (const key in NUMBERS) {
    // biome-ignore lint/suspicious/noAssignInExpressions: keeps the client within its size budget
    const value = (numbers[key as keyof typeof NUMBERS] = o[key as keyof typeof NUMBERS] ?? NUMBERS[key as keyof typeof NUMBERS])
    // The timeouts (…Timeout) and pingInterval start at 1 ms: at 0 every attempt or request fails at once, and pings
    // go in a loop. 0 means something for the others: no wait (minUptime, ackDelay), no request let wait (maxQueue).
    const min = +/T|pi/.test(key)
    // A count of requests is whole: 1.5 would let two wait.
    const whole = key === 'maxQueue'
    check(key, isNumber(value, min) && !(whole && value % 1), `a ${whole ? 'whole ' : ''}number from ${min} to 2^31-1`)
  }
  return {
    ...numbers,
    url,
    token,
    WebSocket: WS,
    watchNetwork,
    connection,
    backoff: isFunction(b) ? (b as (attempt: number) => number) : (attempt) => fullJitter(attempt, { initial, factor, max }, random),
    storage: s || memoryStorage(),
  }
}
