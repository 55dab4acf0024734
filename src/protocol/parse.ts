import type { ClientFrame } from './frames.js'
import { isObject, isSeq, isShortString, MAX_ID_LENGTH, MAX_TOPIC_LENGTH, MAX_TOPICS_PER_FRAME, type Obj } from './guards.js'

export { MAX_ID_LENGTH, MAX_TOPIC_LENGTH, MAX_TOPICS_PER_FRAME }

/** The result of parsing a frame: the frame, or why it was refused. */
export type Parsed<T> =
  | { ok: true; frame: T }
  | { ok: false; code: 'bad_json' | 'bad_frame' | 'unknown_type'; message: string; requestId?: string }

/** Most ids one `mark_read` frame may carry. */
export const MAX_IDS_PER_FRAME = 500
/** Largest `limit` of one history page. */
export const MAX_HISTORY_LIMIT = 100

/** Parses JSON text into an object with a string `type`, or says why it is not one. */
function parseObject(text: string): Parsed<Obj & { type: string }> {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { ok: false, code: 'bad_json', message: 'frame is not valid JSON' }
  }
  if (!isObject(value) || typeof value.type !== 'string') {
    return { ok: false, code: 'bad_frame', message: 'frame must be an object with a string "type"' }
  }
  return { ok: true, frame: value as Obj & { type: string } }
}

/** Checks each listed field; returns the first complaint. */
function check(
  frame: Obj,
  rules: Record<string, [optional: boolean, test: (v: unknown) => boolean, expected: string]>,
): string | undefined {
  for (const [key, [optional, test, expected]] of Object.entries(rules)) {
    const value = frame[key]
    if (value === undefined && optional) continue
    if (!test(value)) return `"${key}" must be ${expected}`
  }
  return undefined
}

const requestId: [boolean, (v: unknown) => boolean, string] = [
  true,
  (v) => isShortString(v, MAX_ID_LENGTH),
  `a string of 1–${MAX_ID_LENGTH} characters`,
]
const seq = (optional: boolean): [boolean, (v: unknown) => boolean, string] => [optional, isSeq, 'a non-negative integer']
// Any string of 1–256 characters: one the store cannot keep (a lone surrogate, U+0000) is refused on its own
// (bad_topic), so that the other topics of its frame are not refused with it.
const isTopic = (v: unknown) => typeof v === 'string' && v.length > 0 && v.length <= MAX_TOPIC_LENGTH
const topic: [boolean, (v: unknown) => boolean, string] = [true, isTopic, `a string of 1–${MAX_TOPIC_LENGTH} characters`]
const topics: [boolean, (v: unknown) => boolean, string] = [
  true,
  (v) => Array.isArray(v) && v.length > 0 && v.length <= MAX_TOPICS_PER_FRAME && v.every(isTopic),
  `an array of 1–${MAX_TOPICS_PER_FRAME} topic strings of 1–${MAX_TOPIC_LENGTH} characters`,
]

const CLIENT_RULES: Record<ClientFrame['type'], Parameters<typeof check>[1]> = {
  auth: {
    // Both judged by the auth, not here (the frame is bounded by maxAuthFrameBytes): a token that is none, or whose
    // `sub` is no user id, is invalid (4001, which ends a client's retries), where a refused frame would only
    // time out (4008) and the client would try again for ever. A `userId` must equal the token's `sub`.
    token: [false, (v) => typeof v === 'string', 'a string'],
    userId: [true, (v) => typeof v === 'string', 'a string'],
    since: seq(true),
  },
  ack: { seq: seq(false) },
  resume: { since: seq(false), requestId },
  mark_read: {
    ids: [
      true,
      (v) => Array.isArray(v) && v.length > 0 && v.length <= MAX_IDS_PER_FRAME && v.every((id) => isShortString(id, MAX_ID_LENGTH)),
      `an array of 1–${MAX_IDS_PER_FRAME} id strings`,
    ],
    all: [true, (v) => v === true, 'true when present'],
    seq: seq(true),
    requestId,
  },
  subscribe: { topic, topics, requestId },
  unsubscribe: { topic, topics, requestId },
  history: {
    before: seq(true),
    limit: [
      true,
      (v) => Number.isSafeInteger(v) && (v as number) >= 1 && (v as number) <= MAX_HISTORY_LIMIT,
      `an integer from 1 to ${MAX_HISTORY_LIMIT}`,
    ],
    requestId,
  },
  ping: { requestId },
}

/**
 * Parses and validates a frame sent by a client. Never throws: a bad frame
 * comes back with a code and a message fit for an `error` reply.
 */
export function parseClientFrame(text: string): Parsed<ClientFrame> {
  const parsed = parseObject(text)
  if (!parsed.ok) return parsed
  const frame = parsed.frame
  const rid = isShortString(frame.requestId, MAX_ID_LENGTH) ? { requestId: frame.requestId } : {}
  const rules = Object.hasOwn(CLIENT_RULES, frame.type) ? CLIENT_RULES[frame.type as ClientFrame['type']] : undefined
  if (!rules) return { ok: false, code: 'unknown_type', message: `unknown frame type "${frame.type.slice(0, 32)}"`, ...rid }
  const problem = check(frame, rules)
  if (problem) return { ok: false, code: 'bad_frame', message: `${frame.type}: ${problem}`, ...rid }
  if (frame.type === 'mark_read' && (frame.ids === undefined) === (frame.all === undefined)) {
    return { ok: false, code: 'bad_frame', message: 'mark_read: give either "ids" or "all"', ...rid }
  }
  if (frame.type === 'mark_read' && frame.seq !== undefined && frame.all === undefined) {
    return { ok: false, code: 'bad_frame', message: 'mark_read: "seq" goes with "all", not with "ids"', ...rid }
  }
  if ((frame.type === 'subscribe' || frame.type === 'unsubscribe') && (frame.topic === undefined) === (frame.topics === undefined)) {
    return { ok: false, code: 'bad_frame', message: `${frame.type}: give either "topic" or "topics"`, ...rid }
  }
  // A type without a `requestId` (ack, auth) ignores it, unchecked: only a valid one is kept, to be echoed.
  if (frame.requestId !== undefined && !('requestId' in rid)) delete frame.requestId
  return { ok: true, frame: frame as unknown as ClientFrame }
}
