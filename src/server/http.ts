import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import { isUserId, MAX_ID_LENGTH } from '../protocol/index.js'
import { type AdminContext, adminRoute } from './admin.js'
import { mintToken } from './auth.js'
import { type PublishRequest, parsePublishBody, underflowProblem } from './publish-input.js'
import { type Audience, IdempotencyKeyReusedError, type NotificationInput } from './store/store.js'

/** What /healthz reports. `ok` and `degraded` (delivery slowed, nothing lost) answer 200; the others 503. */
export interface Health {
  status: 'ok' | 'degraded' | 'unavailable' | 'draining' | 'closing'
  /** What is wrong, when something is. */
  reason?: string
}

/** The `reason` of an `unavailable` /healthz without the API key: the store's error text is for operators. */
const STORE_UNAVAILABLE = 'store: cannot take writes (the API key shows why)'

/** What the HTTP routes need from the server. */
export interface HttpContext extends AdminContext {
  readonly apiKey: string | undefined
  readonly secret: string
  readonly dev: boolean
  readonly maxBodyBytes: number
  readonly maxTopicLength: number
  readonly log: Logger
  health(): Promise<Health>
  stats(): { users: number; connections: number }
  /**
   * Rejects with {@link UnavailableError} when the store cannot take it, with
   * {@link IdempotencyKeyReusedError} when `key` was used for another request.
   * `replayed`: the key was used before for this request, and this is that
   * publish's answer.
   */
  publish(audience: Audience, input: NotificationInput, key?: string): Promise<{ id: string; recipients: number; replayed?: boolean }>
  /** Dev mode: cuts every socket of a user, to show reconnection. */
  drop(userId: string): number
  /** Dev mode: the topics the user is subscribed to, for the demo's Topics card. */
  topics(userId: string): Promise<string[]>
  /** `GET /metrics`, behind its bearer token; undefined while metrics are off (the path is not ours then). */
  readonly metrics: { token: string; scrape(): Promise<{ type: string; text: string }> } | undefined
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const json = JSON.stringify(body)
  // nosniff: a browser takes the answer for what its Content-Type says, never for HTML it guessed.
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  })
  res.end(json)
}

const digest = (s: string) => createHash('sha256').update(s).digest()
/** The digests of the keys a server expects (the API key, the metrics token): made once, not per request. */
const expected = new Map<string, Buffer>()

/** Compares the bearer key in constant time. */
export function authorized(req: IncomingMessage, apiKey: string | undefined): boolean {
  const header = req.headers.authorization
  // Auth schemes are case-insensitive (RFC 9110 §11.1).
  const match = typeof header === 'string' ? /^bearer +(\S+)\s*$/i.exec(header) : null
  if (apiKey === undefined || !match?.[1]) return false
  let key = expected.get(apiKey)
  if (!key) {
    // A process holds a server's few keys; one making server after server (tests) starts over now and then.
    if (expected.size >= 16) expected.clear()
    key = digest(apiKey)
    expected.set(apiKey, key)
  }
  return timingSafeEqual(digest(match[1]), key)
}

class BodyTooLarge extends Error {}
class BadBody extends Error {}
/** How reading a body fails when its client goes away before the end: a reset, or a close. */
const GONE = new Set(['ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE'])

/**
 * The store failed a publish. Mostly nothing was stored; but when the
 * connection to the database is lost while the commit is in flight, it may
 * have been: a retry with the same idempotency key is safe either way. The
 * HTTP API answers 503.
 */
export class UnavailableError extends Error {
  override name = 'UnavailableError' as const
}

/** Whether a request says it has a body: a Content-Length above 0, or a Transfer-Encoding (chunked). */
export const declaresBody = (req: IncomingMessage): boolean =>
  Number(req.headers['content-length']) > 0 || req.headers['transfer-encoding'] !== undefined

/**
 * Reads a request body of at most `max` bytes. With listeners rather than an
 * async iterator: a publish's body is one chunk, and the iterator's promises
 * and stream plumbing cost more than the rest of reading it.
 */
function readBody(req: IncomingMessage, max: number): Promise<string> {
  const declared = Number(req.headers['content-length'])
  if (declared > max) return Promise.reject(new BodyTooLarge())
  // An app's server may hand the request over late (handleRequest after work of its own): its
  // 'end' or 'close' may have gone already. Read by another (a body parser), a body it declared is not
  // here: refused, not taken for none (a prune without a body runs the configured rule).
  if (req.readableEnded) {
    return declaresBody(req)
      ? Promise.reject(
          new BadBody('the body was read before belfry got the request: hand it to handleRequest() before a body parser reads it'),
        )
      : Promise.resolve('')
  }
  if (req.destroyed) return Promise.reject(prematureClose())
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const off = () => req.off('data', data).off('end', end).off('error', stop).off('close', closed)
    const stop = (error: Error) => {
      off()
      reject(error)
    }
    const data = (chunk: Buffer) => {
      size += chunk.length
      if (size > max) stop(new BodyTooLarge())
      else chunks.push(chunk)
    }
    const end = () => {
      off()
      try {
        resolve(UTF8.decode(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)))
      } catch {
        reject(new BadBody('the body is not valid UTF-8'))
      }
    }
    // Closed before its end: the client went away.
    const closed = () => stop(prematureClose())
    req.on('data', data).on('end', end).on('error', stop).on('close', closed)
  })
}

const UTF8 = new TextDecoder('utf-8', { fatal: true })

const prematureClose = () => Object.assign(new Error('the request closed before its body ended'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })

/** An `Idempotency-Key`: 1 to 255 visible ASCII characters, taken as sent (the quotes of a structured-field string included). */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/

/**
 * The request's `Idempotency-Key`, undefined without one, or why it is refused.
 * The header is the one of the IETF draft "The Idempotency-Key HTTP Header
 * Field"; one key a request (Node joins repeated headers with ", ", which no
 * key holds).
 */
function idempotencyKey(headers: IncomingMessage['headers']): { key: string | undefined } | { reason: string } {
  const value = headers['idempotency-key']
  if (value === undefined) return { key: undefined }
  if (typeof value === 'string' && IDEMPOTENCY_KEY.test(value)) return { key: value }
  return { reason: 'send one "Idempotency-Key" of 1–255 visible ASCII characters (no spaces), e.g. a UUID' }
}

/**
 * Serves belfry's HTTP routes: `/healthz`, `/metrics` and every path under
 * `/api/` (one that is no route is answered 404). Returns false for any other
 * path, leaving the request to the caller.
 *
 * - `GET /healthz` → 200 `{status}` while the server can take publishes (with the API key also
 *   `users` and `connections`), else 503 with a `reason` (the store's error text only with the API key)
 * - `POST /api/notifications` (Bearer key) → 201 `{ids, recipients}` once durable
 * - `/api/admin/*` (Bearer key): see admin.ts
 * - `GET /api/dev/token?user=ID` → `{token, userId, apiKey}` (dev mode only; `GET /api/dev/topics` too)
 * - `POST /api/dev/drop?user=ID` → cuts the user's sockets (dev mode only)
 * - `GET /metrics` (Bearer metrics token) → the Prometheus text format (when metrics are on)
 */
export async function handleHttp(req: IncomingMessage, res: ServerResponse, ctx: HttpContext): Promise<boolean> {
  let served = true
  try {
    served = await route(req, res, ctx)
  } catch (error) {
    // Answered here, not by the caller: an app's own server calls handleRequest and has no answer for it.
    ctx.log.error({ err: error }, 'request failed')
    if (res.headersSent) res.destroy()
    else if (error instanceof UnavailableError)
      sendJson(res, 503, { error: 'unavailable', message: `${error.message}; retry later` }, { 'retry-after': '5' })
    else sendJson(res, 500, { error: 'internal', message: 'internal error' })
  }
  if (served) boundBody(req, ctx.bodyTimeoutMs)
  return served
}

/**
 * A request answered before its body was read (a 401, 404, 405 or 415) gets
 * `timeoutMs` for the rest of the body to arrive, as one that is read does:
 * Node reads and drops the rest, and a body trickled byte by byte would hold
 * the connection for Node's `requestTimeout` (300 s).
 */
export function boundBody(req: IncomingMessage, timeoutMs: number): void {
  if (req.complete) return
  const timer = setTimeout(() => req.destroy(), timeoutMs).unref()
  req.once('close', () => clearTimeout(timer))
}

async function route(req: IncomingMessage, res: ServerResponse, ctx: HttpContext): Promise<boolean> {
  const url = URL.parse(req.url ?? '/', 'http://localhost')
  if (!url) return false // not a path of ours (e.g. `//`): the caller answers it
  const route = url.pathname
  if (route === '/healthz') {
    if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed(res, 'GET, HEAD')
    const health = await ctx.health()
    const ok = health.status === 'ok' || health.status === 'degraded'
    // Counts, and the store's own words (which may name internal hosts and users), are for operators: only with the API key.
    const operator = authorized(req, ctx.apiKey)
    const shown = operator || health.status !== 'unavailable' ? health : { ...health, reason: STORE_UNAVAILABLE }
    sendJson(res, ok ? 200 : 503, { ...shown, ...(operator && ctx.stats()) })
    return true
  }
  // Off, the path is left to the caller: an app's server may serve metrics of its own there.
  if (route === '/metrics' && ctx.metrics) {
    if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed(res, 'GET, HEAD')
    if (!authorized(req, ctx.metrics.token)) {
      sendJson(
        res,
        401,
        {
          error: 'unauthorized',
          message: 'send "Authorization: Bearer <token>": BELFRY_METRICS_TOKEN, or BELFRY_API_KEY when it is not set',
        },
        { 'www-authenticate': 'Bearer' },
      )
      return true
    }
    const { type, text } = await ctx.metrics.scrape()
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
    res.end(text)
    return true
  }
  if (route === '/api/notifications') {
    if (req.method !== 'POST') return methodNotAllowed(res, 'POST')
    await publishRoute(req, res, ctx)
    return true
  }
  if (route.startsWith('/api/admin/')) {
    await adminRoute(req, res, url, ctx)
    return true
  }
  if (route.startsWith('/api/dev/') && ctx.dev) {
    await devRoute(req, res, url, ctx)
    return true
  }
  if (route.startsWith('/api/')) {
    sendJson(res, 404, { error: 'not_found', message: `no route ${route.slice(0, 64)}` })
    return true
  }
  return false
}

/** The answer to a request that a closing server will not take. */
export function closing(res: ServerResponse): void {
  sendJson(res, 503, { error: 'closing', message: 'server is shutting down' })
}

export function methodNotAllowed(res: ServerResponse, allow: string): true {
  sendJson(res, 405, { error: 'method_not_allowed', message: `use ${allow}` }, { allow })
  return true
}

/** Answers 401 and says false when the request lacks the API key. */
export function keyed(req: IncomingMessage, res: ServerResponse, apiKey: string | undefined): boolean {
  if (authorized(req, apiKey)) return true
  sendJson(res, 401, { error: 'unauthorized', message: 'send "Authorization: Bearer <BELFRY_API_KEY>"' }, { 'www-authenticate': 'Bearer' })
  return false
}

/**
 * Reads a request body of at most `max` bytes that arrives within `timeoutMs`
 * and is UTF-8. Undefined when it is not: the request is answered then (413,
 * 408 or 400), unless its client went away before the body's end.
 */
export async function bodyText(req: IncomingMessage, res: ServerResponse, max: number, timeoutMs: number): Promise<string | undefined> {
  // A body that trickles in would hold the request (and Node's 300 s requestTimeout) open.
  const timer = setTimeout(() => {
    res.once('finish', () => req.destroy())
    sendJson(res, 408, { error: 'request_timeout', message: `the body must arrive within ${timeoutMs} ms` }, { connection: 'close' })
  }, timeoutMs)
  try {
    const text = await readBody(req, max)
    return res.headersSent ? undefined : text
  } catch (error) {
    if (res.headersSent) return undefined // timed out, answered already
    if (error instanceof BodyTooLarge) {
      sendJson(res, 413, { error: 'payload_too_large', message: `body must be at most ${max} bytes` }, { connection: 'close' })
      req.resume()
      return undefined
    }
    if (error instanceof BadBody) {
      sendJson(res, 400, { error: 'bad_request', message: error.message })
      return undefined
    }
    // The client went away before the body's end: no one to answer, nothing failed here.
    if (GONE.has((error as NodeJS.ErrnoException).code ?? '')) return undefined
    throw error
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Whether a body of this Content-Type is read as its sender wrote it: JSON on the wire is UTF-8 (RFC 8259 §8.1),
 * and one declared in another charset (`charset=iso-8859-1`, `utf-16`) would be read as other text. US-ASCII, a
 * part of UTF-8, is read as sent. The parameters are read one after another as RFC 9110 §5.6.6 writes them (a
 * quoted value's own `;` and `charset=` are none); a header whose parameters do not parse so is refused, and so
 * is one with any charset parameter but these.
 */
export function utf8(type: string): boolean {
  const semicolon = type.indexOf(';')
  if (semicolon < 0) return true
  // A token, or a quoted string with its backslash escapes; anchored (y) where the last parameter ended.
  const param = /\s*;\s*(?:([!#$%&'*+.^_`|~\w-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[!#$%&'*+.^_`|~\w-]+))?\s*/y
  param.lastIndex = semicolon
  let end = semicolon
  for (let m = param.exec(type); m && param.lastIndex > end; m = param.exec(type)) {
    end = param.lastIndex
    const value = m[2]?.startsWith('"') ? m[2].slice(1, -1).replace(/\\(.)/g, '$1') : m[2]
    if (m[1]?.toLowerCase() === 'charset' && !/^(utf-?8|us-ascii)$/i.test(value!)) return false
  }
  return end === type.length
}

/** Answers 415 for a body not declared JSON, or not in UTF-8 (see {@link utf8}); its body is read to its end and dropped. */
export function unsupportedType(req: IncomingMessage, res: ServerResponse): void {
  const type = req.headers['content-type'] ?? ''
  sendJson(res, 415, {
    error: 'unsupported_media_type',
    message: `send the body as "Content-Type: application/json" in UTF-8, not "${type.slice(0, 64)}"`,
  })
  req.resume()
}

async function publishRoute(req: IncomingMessage, res: ServerResponse, ctx: HttpContext): Promise<void> {
  if (!keyed(req, res, ctx.apiKey)) return
  const type = req.headers['content-type'] ?? ''
  if (!/^application\/json\s*(;|$)/i.test(type) || !utf8(type)) return unsupportedType(req, res)
  const text = await bodyText(req, res, ctx.maxBodyBytes, ctx.bodyTimeoutMs)
  if (text === undefined) return
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    sendJson(res, 400, { error: 'bad_request', message: 'body is not valid JSON' })
    return
  }
  const request: PublishRequest = parsePublishBody(body, ctx.maxTopicLength)
  // Only `data` holds numbers: any other field with one is refused above.
  const reason = request.ok ? underflowProblem(text, request.input.data) : request.reason
  if (!request.ok || reason !== undefined) {
    sendJson(res, 400, { error: 'bad_request', message: reason })
    return
  }
  const idempotency = idempotencyKey(req.headers)
  if ('reason' in idempotency) {
    sendJson(res, 400, { error: 'bad_request', message: idempotency.reason })
    return
  }
  const { key } = idempotency
  if (!ctx.accepting()) return closing(res)
  try {
    const { id, recipients, replayed } = await ctx.publish(request.audience, request.input, key)
    // A replay is the first answer again, status included; the header tells the two apart.
    sendJson(res, 201, { ids: [id], recipients }, replayed ? { 'idempotent-replayed': 'true' } : {})
  } catch (error) {
    if (error instanceof IdempotencyKeyReusedError) {
      sendJson(res, 422, {
        error: 'idempotency_key_reused',
        message: 'this Idempotency-Key was used for a different request: send a new key for a new notification',
      })
      return
    }
    if (!(error instanceof UnavailableError)) throw error
    // A connection lost during the commit leaves it unknown whether the notification was stored.
    const retry =
      key === undefined
        ? 'it may or may not have been stored; retry later, with an Idempotency-Key to store it at most once'
        : 'it may or may not have been stored; retry later with the same Idempotency-Key: it is stored at most once'
    sendJson(res, 503, { error: 'unavailable', message: `${error.message}; ${retry}` }, { 'retry-after': '5' })
  }
}

/** Each dev route and the one method it answers. */
const DEV_ROUTES: Record<string, string> = { '/api/dev/token': 'GET', '/api/dev/drop': 'POST', '/api/dev/topics': 'GET' }

/** Hosts a dev route answers on: loopback only, so DNS rebinding cannot reach it from a web page. */
const LOOPBACK_HOST = /^(localhost|[\w-]+\.localhost|127(\.\d{1,3}){3}|\[::1\])$/i

/** Peer addresses a dev route answers: loopback (127.0.0.0/8, ::1, and 127.x mapped into IPv6). */
const LOOPBACK_ADDRESS = /^(127(\.\d{1,3}){3}|::1|::ffff:127(\.\d{1,3}){3})$/i

/**
 * Why a dev route refuses this request, if it does: a peer that is not on
 * loopback (whatever Host it claims: the peer writes that header itself), a
 * Host that is not a loopback name (DNS rebinding), or an `Origin` /
 * `Sec-Fetch-Site` that shows a page of another origin made it (cross-site
 * requests, even "simple" ones that skip CORS preflight). A request with
 * neither header passes: curl, and a dev-server proxy on this machine that
 * keeps the Host (`changeOrigin: false`).
 */
export function devRefusal(headers: IncomingMessage['headers'], peer: string | undefined): string | undefined {
  if (!LOOPBACK_ADDRESS.test(peer ?? '')) return 'dev routes answer only to clients on this machine (a loopback address)'
  const host = headers.host ?? ''
  const hostname = URL.parse(`http://${host}`)?.hostname ?? ''
  if (!LOOPBACK_HOST.test(hostname))
    return `dev routes answer only on a loopback host (localhost, 127.0.0.1, [::1]), not "${host.slice(0, 64)}"`
  const origin = headers.origin
  if (origin !== undefined && origin !== `http://${host}` && origin !== `https://${host}`) {
    return `dev routes refuse cross-origin requests (Origin "${origin.slice(0, 64)}", Host "${host.slice(0, 64)}")`
  }
  const site = headers['sec-fetch-site']
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `dev routes refuse ${site} requests`
  return undefined
}

async function devRoute(req: IncomingMessage, res: ServerResponse, url: URL, ctx: HttpContext): Promise<void> {
  const route = url.pathname
  const method = DEV_ROUTES[route]
  if (method === undefined) return sendJson(res, 404, { error: 'not_found', message: `no route ${route.slice(0, 64)}` })
  if (req.method !== method) return void methodNotAllowed(res, method)
  const refusal = devRefusal(req.headers, req.socket.remoteAddress)
  if (refusal !== undefined) return sendJson(res, 403, { error: 'forbidden', message: refusal })
  const user = url.searchParams.get('user') ?? ''
  if (!isUserId(user)) {
    return sendJson(res, 400, {
      error: 'bad_request',
      message: `"user" must be a user id of 1–${MAX_ID_LENGTH} characters, no control characters`,
    })
  }
  if (route === '/api/dev/token') {
    const ttl = Number(url.searchParams.get('ttl') ?? 3600)
    if (!Number.isSafeInteger(ttl) || ttl < 1 || ttl > 86_400) {
      return sendJson(res, 400, { error: 'bad_request', message: '"ttl" must be whole seconds from 1 to 86400' })
    }
    // The demo page publishes through the real API, so dev mode hands it the key too.
    return sendJson(res, 200, { token: await mintToken(ctx.secret, user, ttl), userId: user, apiKey: ctx.apiKey })
  }
  if (route === '/api/dev/topics') return sendJson(res, 200, { userId: user, topics: await ctx.topics(user) })
  sendJson(res, 200, { dropped: ctx.drop(user) })
}
