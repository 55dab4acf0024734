import { type BackoffOptions, fullJitter } from './backoff.js'
import { type CursorStorage, defaultStorage, memoryStorage } from './storage.js'

/** A value, or a function that yields it (sync or async); called on every connect. */
export type Provider<T> = T | (() => T | Promise<T>)

/** A WebSocket constructor: the browser's, or `ws` in Node. */
export type WebSocketLike = new (url: string, protocols?: string | string[]) => WebSocket

/** Options of {@link NotificationClient}. Only `url` and `token` are required. */
export interface ClientOptions {
  /** WebSocket URL of the server, e.g. `wss://example.com/ws`, or a function that yields it. */
  url: Provider<string>
  /** User token (HS256 JWT), or a function that yields a fresh one; called on every connect, one call at a time. */
  token: Provider<string>
  /** WebSocket constructor. @default globalThis.WebSocket (pass `ws` in Node 20) */
  WebSocket?: WebSocketLike
  /** Where the cursor is kept; `false` keeps it in memory. @default localStorage in browsers, memory elsewhere */
  storage?: CursorStorage | false
  /** Backoff shape, or a function from the attempt (0-based) to a delay in ms. @default { initial: 500, factor: 2, max: 30000 } */
  backoff?: Partial<BackoffOptions> | ((attempt: number) => number)
  /** Random source for the jitter (for tests). @default Math.random */
  random?: () => number
  /** Time a connection must stay online before the attempt count resets, in ms. @default 5000 */
  minUptime?: number
  /** Time allowed to open the socket and authenticate, in ms. @default 10000 */
  connectTimeout?: number
  /** Time a request waits for its reply, in ms. @default 10000 */
  requestTimeout?: number
  /** Requests that may wait for the connection; more reject with a `RequestError`. @default 100 */
  maxQueue?: number
  /** Delay before the cumulative ack of delivered notifications is sent, in ms. @default 1000 */
  ackDelay?: number
  /** Interval of app-level pings while online, in ms. @default 25000 */
  pingInterval?: number
  /** Time to wait for a pong before the connection is taken for dead, in ms. @default 10000 */
  pongTimeout?: number
  /** React to the browser's online/offline and visibility events. @default true */
  watchNetwork?: boolean
}

/** Options after defaults. */
export interface ResolvedClientOptions extends Required<Omit<ClientOptions, 'backoff' | 'storage' | 'random'>> {
  storage: CursorStorage
  backoff: (attempt: number) => number
}

const DEFAULTS = {
  minUptime: 5000,
  connectTimeout: 10_000,
  requestTimeout: 10_000,
  maxQueue: 100,
  ackDelay: 1000,
  pingInterval: 25_000,
  pongTimeout: 10_000,
}

const DEFAULT_BACKOFF: BackoffOptions = { initial: 500, factor: 2, max: 30_000 }

/** A delay or a count: 0 up to setTimeout's limit (NaN fails). */
const isNumber = (v: unknown) => (v as number) >= 0 && (v as number) < 2 ** 31 && typeof v === 'number'
const isFunction = (v: unknown) => typeof v === 'function'

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

/** Applies defaults; throws a `TypeError` naming the first bad option. */
export function resolveClientOptions(o: ClientOptions): ResolvedClientOptions {
  const { WebSocket: WS = globalThis.WebSocket, backoff: b = {}, random = Math.random, storage: s, watchNetwork = true } = o
  const merged = { ...DEFAULTS, ...o }
  const shape = { ...DEFAULT_BACKOFF, ...b }
  const valid: Record<string, unknown> = {
    url: isFunction(o.url) || !!wsUrl(o.url),
    token: isFunction(o.token) || (typeof o.token === 'string' && o.token !== ''),
    WebSocket: isFunction(WS), // Node 20 has none: pass `ws`
    random: isFunction(random),
    // The bound min(max, initial × factor^attempt) must grow to 100 ms: retries never spin at 0 ms.
    backoff:
      isFunction(b) ||
      (typeof b === 'object' &&
        shape.initial >= 1 &&
        isNumber(shape.initial) &&
        shape.max >= 100 &&
        isNumber(shape.max) &&
        (shape.factor > 1 || (shape.factor === 1 && shape.initial >= 100))),
    storage: !s || (isFunction(s.getItem) && isFunction(s.setItem)),
    watchNetwork: typeof watchNetwork === 'boolean',
  }
  for (const key in DEFAULTS) valid[key] = isNumber(merged[key as keyof typeof DEFAULTS])
  for (const key in valid) if (!valid[key]) throw new TypeError(`belfry: options.${key} is invalid`)
  return {
    ...merged,
    WebSocket: WS,
    watchNetwork,
    backoff: isFunction(b) ? (b as (attempt: number) => number) : (attempt) => fullJitter(attempt, shape, random),
    storage: s || (s === false ? memoryStorage() : defaultStorage()),
  }
}
