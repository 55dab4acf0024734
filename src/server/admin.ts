import type { IncomingMessage, ServerResponse } from 'node:http'
import { isObject, isShortString, isUserId, MAX_ID_LENGTH } from '../protocol/index.js'
import { bodyText, closing, declaresBody, keyed, methodNotAllowed, sendJson, unsupportedType, utf8 } from './http.js'
import { type Retention, resolveRetention } from './options.js'
import type { PruneTotals } from './retention.js'
import type { UserState } from './store/store.js'

/** What `GET /api/admin/users/:id` answers. */
export interface AdminUser extends UserState {
  userId: string
  /** The user's authenticated connections to this process. */
  connections: number
}

/** What the admin routes need from the server. */
export interface AdminContext {
  readonly apiKey: string | undefined
  /** How long a request body may take to arrive. */
  readonly bodyTimeoutMs: number
  /** The configured retention (undefined: none). */
  readonly retention: Readonly<Retention> | undefined
  /** The user's counters, or undefined for a user the store does not know. */
  user(userId: string): Promise<AdminUser | undefined>
  /** Runs a retention pass now (after the one in progress, if any). */
  prune(retention: Readonly<Retention>): Promise<PruneTotals>
  /** Ends the user's subscriptions to these topics now. */
  unsubscribe(userId: string, topics: readonly string[]): Promise<void>
  readonly maxTopicLength: number
  /** False once the server is closing (a draining one still takes publishes, and answers here). */
  accepting(): boolean
}

/** The largest body `POST /api/admin/prune` reads. */
const MAX_ADMIN_BODY = 1024
/** Topics one unsubscribe takes. */
const MAX_UNSUBSCRIBE_TOPICS = 1000
/**
 * The largest body `POST /api/admin/unsubscribe` reads: its most topics at their longest, each
 * character as JSON may write it (`\uXXXX`: 6 bytes), with their quotes, a comma and the spacing a
 * JSON writer puts between them (Python's `json.dumps`: `", "`), and the user id so written.
 */
const maxUnsubscribeBody = (maxTopicLength: number) => MAX_UNSUBSCRIBE_TOPICS * (maxTopicLength * 6 + 16) + 4096
const POSTS = new Set(['/api/admin/prune', '/api/admin/unsubscribe'])

/**
 * The admin routes, behind the API key like publishing:
 *
 * - `GET /api/admin/users?id=<id>` (or `/api/admin/users/<id>`) → 200
 *   `{userId, latestSeq, ackedSeq, unreadCount, floor, connections}` (`connections`: in this
 *   process), 404 for a user the store does not know. The query form takes any id: in the
 *   path, `.` and `..` are dot segments, which URL parsing resolves away
 * - `POST /api/admin/prune` with an optional JSON body `{days?, maxPerUser?}` (else the
 *   configured retention) → 200 `{removed, unread, users, notifications}` once the pass is over;
 *   400 with the reason for a bad body, or when neither gives a rule
 * - `POST /api/admin/unsubscribe` with `{userId, topics}` → 200 `{userId, topics}` once the
 *   user's subscriptions to them have ended (a topic it did not follow is no error): how an app
 *   ends a grant it revoked at once, rather than at the user's next auth
 */
export async function adminRoute(req: IncomingMessage, res: ServerResponse, url: URL, ctx: AdminContext): Promise<void> {
  const route = url.pathname
  const inPath = /^\/api\/admin\/users\/([^/]+)$/.exec(route)
  const user = inPath || route === '/api/admin/users'
  if (!user && !POSTS.has(route)) return sendJson(res, 404, { error: 'not_found', message: `no route ${route.slice(0, 64)}` })
  const method = user ? 'GET' : 'POST'
  if (req.method !== method && !(user && req.method === 'HEAD')) return void methodNotAllowed(res, user ? 'GET, HEAD' : method)
  if (!keyed(req, res, ctx.apiKey)) return void req.resume()
  // Closed, the store and the pruner answer nothing true (a closed pruner's pass removes nothing): as a publish.
  if (!ctx.accepting()) return closing(res)
  const bad = (message: string) => sendJson(res, 400, { error: 'bad_request', message })
  if (user) {
    let id = url.searchParams.get('id')
    if (inPath) {
      try {
        id = decodeURIComponent(inPath[1]!)
      } catch {
        return bad('the user id is not valid percent-encoding')
      }
    }
    if (id === null) return bad('which user? GET /api/admin/users?id=<id> (or /api/admin/users/<id>)')
    if (!isUserId(id)) return bad(`a user id has 1–${MAX_ID_LENGTH} characters, no control characters`)
    const state = await ctx.user(id)
    return state ? sendJson(res, 200, state) : sendJson(res, 404, { error: 'not_found', message: `no user "${id.slice(0, 64)}"` })
  }
  // A body in another charset would be read as other text: another user's id, say. (No body, nothing to misread: a
  // prune by the configured rule from a client whose default Content-Type names one.)
  if (declaresBody(req) && !utf8(req.headers['content-type'] ?? '')) return unsupportedType(req, res)
  const unsubscribing = route === '/api/admin/unsubscribe'
  const text = await bodyText(req, res, unsubscribing ? maxUnsubscribeBody(ctx.maxTopicLength) : MAX_ADMIN_BODY, ctx.bodyTimeoutMs)
  if (text === undefined) return
  // Again once the body is in: close() (on an app's own server) does not wait for a request still arriving.
  if (!ctx.accepting()) return closing(res)
  if (unsubscribing) {
    const body = parseJson(text)
    const problem = unsubscribeProblem(body, ctx.maxTopicLength)
    if (problem) return bad(problem)
    const { userId, topics } = body as { userId: string; topics: string[] }
    await ctx.unsubscribe(userId, topics)
    return sendJson(res, 200, { userId, topics })
  }
  let retention = ctx.retention
  if (text.trim() !== '') {
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      return bad('body is not valid JSON')
    }
    try {
      retention = resolveRetention(body, 'body') ?? retention
    } catch (error) {
      return bad((error as Error).message)
    }
  }
  if (!retention) return bad('no retention is configured: send {"days": N} or {"maxPerUser": N}')
  sendJson(res, 200, await ctx.prune(retention))
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** What is wrong with an unsubscribe body, or undefined. */
function unsubscribeProblem(body: unknown, maxTopicLength: number): string | undefined {
  if (!isObject(body)) return 'body must be a JSON object {"userId": "…", "topics": ["…"]}'
  const extra = Object.keys(body).find((k) => k !== 'userId' && k !== 'topics')
  if (extra !== undefined) return `body.${extra.slice(0, 32)} is not a field (userId, topics)`
  if (!isUserId(body.userId)) return `body.userId must be a user id of 1–${MAX_ID_LENGTH} characters, no control characters`
  const { topics } = body
  if (!Array.isArray(topics) || topics.length === 0 || topics.length > MAX_UNSUBSCRIBE_TOPICS) {
    return `body.topics must be an array of 1–${MAX_UNSUBSCRIBE_TOPICS} topics`
  }
  const i = topics.findIndex((t) => !isShortString(t, maxTopicLength))
  if (i >= 0) return `body.topics[${i}] must be a topic of 1–${maxTopicLength} characters`
  return undefined
}
