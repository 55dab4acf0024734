import type { JsonObject, Notification, ServerFrame } from './frames.js'
import { isObject, isSeq, isString, type Obj, optional } from './guards.js'

/**
 * Checks the parts of a notification the client relies on. The article's
 * server sends no `id`/`seq`/`read`, only what its publisher spread into the
 * frame (an `id` of any type: a database row's number); the caller fills those
 * in. One with a `seq` (a belfry server's) has a string `id`.
 */
export function isNotificationLike(v: Obj): v is Obj & Pick<Notification, 'title' | 'body'> {
  return (
    isString(v.title) &&
    isString(v.body) &&
    optional(v.priority, (p) => p === 'low' || p === 'medium' || p === 'high') &&
    optional(v.seq, () => isSeq(v.seq) && isString(v.id)) &&
    optional(v.data, isObject) &&
    optional(v.topic, isString)
  )
}

/** An array whose every item passes `test`. */
const arrayOf = (v: unknown, test: (item: unknown) => boolean) => Array.isArray(v) && v.every(test)

/**
 * What the client reads of each frame type; anything else in a frame is passed
 * through untouched. No prototype: a type such as "toString" finds no check.
 */
const CHECKS: Record<string, ((v: Obj) => boolean) | null> = {
  __proto__: null,
  // With a seq (a belfry server's), an unreadCount; the article's server sends no seq.
  auth_success: (v: Obj) => optional(v.seq, () => isSeq(v.seq) && isSeq(v.unreadCount) && optional(v.oldestSeq, isSeq)),
  notification: isNotificationLike,
  replayed: (v: Obj) => isSeq(v.seq),
  read: (v: Obj) => arrayOf(v.ids, isString) && isSeq(v.seq) && isSeq(v.unreadCount),
  history: (v: Obj) => arrayOf(v.items, (n) => isObject(n) && isNotificationLike(n)),
  error: (v: Obj) => isString(v.code) && isString(v.message),
  subscribed: (v: Obj) => optional(v.refused, (r) => arrayOf(r, (x) => isObject(x) && isString(x.topic) && isString(x.code))),
}

/**
 * Parses a frame sent by a server. Returns `undefined` for anything that is
 * not an object with a string `type`, or a known type with bad fields; the
 * caller reports it. Unknown types pass (a newer server may send more), and
 * the client ignores them.
 */
export function parseServerFrame<Data extends JsonObject = JsonObject>(text: string): ServerFrame<Data> | undefined {
  try {
    const frame = JSON.parse(text)
    if (isObject(frame) && isString(frame.type) && (CHECKS[frame.type]?.(frame) ?? true)) return frame as unknown as ServerFrame<Data>
  } catch {}
  return undefined
}
