import { isObject, isShortString, isUserId, isWellFormed, type JsonObject, MAX_ID_LENGTH } from '../protocol/index.js'
import type { Audience, NotificationInput } from './store/store.js'

/** Longest title and body accepted, in characters. */
const MAX_TITLE_LENGTH = 256
const MAX_BODY_LENGTH = 8192
/** Largest `data` payload, serialised. */
const MAX_DATA_BYTES = 16 * 1024
/** Deepest nesting of `data` (the object itself is level 1). */
const MAX_DATA_DEPTH = 32
/** Most recipients one publish may name. */
const MAX_RECIPIENTS = 10_000

const AUDIENCE_KEYS = ['userId', 'userIds', 'topic', 'broadcast'] as const
const NOTIFICATION_KEYS = new Set<string>(['title', 'body', 'priority', 'data'])
const KNOWN_KEYS = new Set<string>([...AUDIENCE_KEYS, ...NOTIFICATION_KEYS])

export type PublishRequest = { ok: true; audience: Audience; input: NotificationInput } | { ok: false; reason: string }

/**
 * Whether `test` holds for the item at every index of `array`, a hole of a
 * sparse one too (which every() skips), stopping at the first that fails
 * (a hole of a huge sparse array at once, nothing allocated).
 */
export function everyIndex<T>(array: readonly T[], test: (item: T) => boolean): boolean {
  for (let i = 0; i < array.length; i++) if (!test(array[i]!)) return false
  return true
}

/** A JSON object as JSON.parse makes it: not a class instance, a Map or a Date. */
const isPlainObject = (v: unknown): v is Record<string, unknown> => isObject(v) && Object.getPrototypeOf(v) === Object.prototype

/**
 * Checks the notification fields shared by every way of publishing: a field
 * not in `known` (a typo such as `priorty`) is refused, not ignored.
 */
export function checkNotification(
  value: unknown,
  known: ReadonlySet<string> = NOTIFICATION_KEYS,
): { ok: true; input: NotificationInput } | { ok: false; reason: string } {
  if (!isPlainObject(value)) return { ok: false, reason: 'notification must be a JSON object' }
  const unknown = Object.keys(value).find((k) => !known.has(k))
  if (unknown !== undefined) return { ok: false, reason: `unknown field "${unknown.slice(0, 32)}"` }
  const { title, body, priority, data } = value
  if (typeof title !== 'string' || title.length === 0 || title.length > MAX_TITLE_LENGTH) {
    return { ok: false, reason: `"title" must be a string of 1–${MAX_TITLE_LENGTH} characters` }
  }
  if (typeof body !== 'string' || body.length > MAX_BODY_LENGTH) {
    return { ok: false, reason: `"body" must be a string of at most ${MAX_BODY_LENGTH} characters` }
  }
  if (!isWellFormed(title) || !isWellFormed(body)) {
    return {
      ok: false,
      reason: '"title" and "body" must be well-formed Unicode without U+0000 (no lone surrogate such as "\\ud800", no "\\u0000")',
    }
  }
  if (priority !== undefined && priority !== 'low' && priority !== 'medium' && priority !== 'high') {
    return { ok: false, reason: '"priority" must be "low", "medium" or "high"' }
  }
  const input: NotificationInput = { title, body, priority: priority ?? 'medium' }
  if (data !== undefined) {
    if (!isPlainObject(data)) return { ok: false, reason: '"data" must be a JSON object' }
    const problem = dataProblem(data, MAX_DATA_DEPTH)
    if (problem) return { ok: false, reason: `"data" must ${problem}` }
    let json: string
    try {
      json = JSON.stringify(data)
    } catch {
      return { ok: false, reason: '"data" must be serialisable as JSON' }
    }
    if (Buffer.byteLength(json) > MAX_DATA_BYTES) return { ok: false, reason: `"data" must be at most ${MAX_DATA_BYTES} bytes as JSON` }
    // What is stored is its JSON: a toJSON (a programmatic caller's) may have made it no object, or deeper.
    const stored = JSON.parse(json) as unknown
    if (!isPlainObject(stored) || dataProblem(stored, MAX_DATA_DEPTH)) {
      return { ok: false, reason: `"data" must be a JSON object nested at most ${MAX_DATA_DEPTH} levels deep, as JSON.stringify writes it` }
    }
    input.data = stored as JsonObject
  }
  return { ok: true, input }
}

/**
 * What `value` must do that it does not: nest at most `max` levels, and hold
 * only numbers JSON can carry (JSON.parse reads `1e400` as Infinity, which
 * would be stored as `null`), integers within ±(2^53 − 1): past that, a
 * double has no room for every digit, and `9007199254740993` (an int64 id, a
 * database key) was read, stored and delivered as `…992`. Iterative: a deep
 * value cannot overflow the stack here.
 */
function dataProblem(value: unknown, max: number): string | undefined {
  const stack: [unknown, number][] = [[value, 1]]
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [v, depth] = item
    if (typeof v === 'number' && !Number.isFinite(v)) return 'hold finite numbers only (1e400 is out of range)'
    if (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v)) {
      return `hold integers within ±9007199254740991 (2^53 − 1) only: a larger one is read rounded (got about ${v}); send such an id as a string`
    }
    if (typeof v !== 'object' || v === null) continue
    if (depth > max) return `nest at most ${max} levels deep`
    for (const child of Object.values(v)) stack.push([child, depth + 1])
  }
  return undefined
}

/** A JSON string (skipped whole: digits in text are no numbers), or a JSON number. */
const STRING_OR_NUMBER = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g

/** Whether `value` holds the number 0 (or -0) anywhere. Iterative, as {@link dataProblem}. */
function holdsZero(value: unknown): boolean {
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const v = stack.pop()
    if (v === 0) return true
    if (typeof v === 'object' && v !== null) for (const child of Object.values(v)) stack.push(child)
  }
  return false
}

/**
 * Why a publish body's text holds a number JSON.parse read as 0 though it is
 * not (`1e-400`: below the least double, it underflows), if it does. Its
 * value is gone once parsed, so the text is read: only when `data` holds a 0
 * and the text may hold such a number, a digit before a negative exponent or a
 * fraction of 300 zeros (without an exponent, a number below the least double,
 * about 4.9e-324, has 323 zeros after its point).
 */
export function underflowProblem(text: string, data: unknown): string | undefined {
  if (!/\d[eE]-|\.0{300}/.test(text) || !holdsZero(data)) return undefined
  for (const [token] of text.matchAll(STRING_OR_NUMBER)) {
    if (token[0] !== '"' && Number(token) === 0 && /[1-9]/.test(token.replace(/[eE].*/, ''))) {
      return `"data" must hold numbers JSON can carry: ${token.slice(0, 32)} is too small for a double and would be read as 0`
    }
  }
  return undefined
}

/** Checks an audience: one user, several users or a topic (of at most `maxTopicLength` characters). */
export function checkAudience(
  value: Record<string, unknown>,
  maxTopicLength: number,
): { ok: true; audience: Audience } | { ok: false; reason: string } {
  const given = AUDIENCE_KEYS.filter((k) => value[k] !== undefined)
  if (given.length !== 1) return { ok: false, reason: 'give exactly one of "userId", "userIds", "topic" or "broadcast"' }
  const { userId, userIds, topic, broadcast } = value
  if (userId !== undefined) {
    return isUserId(userId)
      ? { ok: true, audience: { userIds: [userId] } }
      : { ok: false, reason: `"userId" must be a user id of 1–${MAX_ID_LENGTH} characters, no control characters` }
  }
  if (userIds !== undefined) {
    if (!Array.isArray(userIds) || userIds.length === 0 || userIds.length > MAX_RECIPIENTS || !everyIndex(userIds, isUserId)) {
      return {
        ok: false,
        reason: `"userIds" must be an array of 1–${MAX_RECIPIENTS} user ids (1–${MAX_ID_LENGTH} characters, no control characters)`,
      }
    }
    return { ok: true, audience: { userIds } }
  }
  if (topic !== undefined) {
    return isShortString(topic, maxTopicLength)
      ? { ok: true, audience: { topic } }
      : { ok: false, reason: `"topic" must be a string of 1–${maxTopicLength} characters, well-formed, without U+0000` }
  }
  return broadcast === true ? { ok: true, audience: { broadcast: true } } : { ok: false, reason: '"broadcast" must be true' }
}

/** Checks the JSON body of `POST /api/notifications`. */
export function parsePublishBody(body: unknown, maxTopicLength: number): PublishRequest {
  if (!isPlainObject(body)) return { ok: false, reason: 'body must be a JSON object' }
  const unknown = Object.keys(body).find((k) => !KNOWN_KEYS.has(k))
  if (unknown !== undefined) return { ok: false, reason: `unknown field "${unknown.slice(0, 32)}"` }
  const audience = checkAudience(body, maxTopicLength)
  if (!audience.ok) return audience
  const notification = checkNotification(body, KNOWN_KEYS)
  if (!notification.ok) return notification
  return { ok: true, audience: audience.audience, input: notification.input }
}
