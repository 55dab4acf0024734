/**
 * Runtime type guards shared by every parser of outside input: the server's
 * frame parser, the client's, and the publish API's body check.
 */

export type Obj = Record<string, unknown>

/** A plain JSON object (not an array, not null). */
export const isObject = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v)
/** A `seq`: a non-negative safe integer. */
export const isSeq = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0
export const isString = (v: unknown): v is string => typeof v === 'string'
/** Absent, or passes `test`. */
export const optional = (v: unknown, test: (v: unknown) => boolean): boolean => v === undefined || test(v)

const NOT_STORABLE = /\p{Cs}|\0/u
/**
 * No lone surrogate (`"\ud800"` in JSON), which cannot be stored as UTF-8
 * unchanged, and no U+0000 (`"\u0000"`), which PostgreSQL's text refuses:
 * text every store keeps as it came.
 */
export const isWellFormed = (v: string): boolean => !NOT_STORABLE.test(v)
/** A well-formed string of 1 to `max` characters. */
export const isShortString = (v: unknown, max: number): v is string =>
  typeof v === 'string' && v.length > 0 && v.length <= max && isWellFormed(v)

/** Longest id (user id, notification id, request id) accepted. */
export const MAX_ID_LENGTH = 64
/** Longest topic name accepted on the wire (the server's limit, `maxTopicLength`, may be lower). */
export const MAX_TOPIC_LENGTH = 256
/** Most topics one subscribe or unsubscribe frame may carry. */
export const MAX_TOPICS_PER_FRAME = 500
/**
 * The most bytes of JSON a frame the client sends holds, under the 64 KiB a server takes by default
 * (`maxFrameBytes`; past it `ws` closes the socket with 1009). Subscribe and unsubscribe frames hold
 * less than this many bytes of topics, each counted at its worst: length × 6 + 3 bytes of JSON (U+0001
 * is `\u0001`, then quotes and comma); 500 short topics (MAX_TOPICS_PER_FRAME) go in one frame, 41 of
 * the longest (256 characters, 1,539 bytes). A request (`markRead` of ~1,700 ids) whose frame would
 * hold this many or more is refused before it is queued: sent, it would cut the connection at every auth.
 */
export const CLIENT_FRAME_BYTES = 64_000
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters (C0, DEL, C1) are what it refuses.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/
/** A user id, wherever one comes from (a publish, a token's `sub`, an auth frame): 1–64 well-formed characters, no control characters. */
export const isUserId = (v: unknown): v is string => isShortString(v, MAX_ID_LENGTH) && !CONTROL.test(v)
