import { createHash, randomUUID } from 'node:crypto'
import type { JsonObject, Notification, Priority } from '../../protocol/index.js'

/** What a publisher supplies. */
export interface NotificationInput {
  title: string
  body: string
  /** @default 'medium' */
  priority?: Priority | undefined
  data?: JsonObject | undefined
}

/** Who receives a publish. */
export type Audience = { userIds: readonly string[] } | { topic: string } | { broadcast: true }

/** The notification as stored once, before it is placed in each inbox. */
export interface StoredNotification {
  id: string
  title: string
  body: string
  priority: Priority
  timestamp: string
  data?: JsonObject
  topic?: string
}

/** One inbox entry created by a publish. */
export interface Delivery {
  userId: string
  seq: number
}

/** The outcome of a publish, known only after it is durable. */
export interface Published {
  notification: StoredNotification
  /** The inbox entries the publish made itself. */
  deliveries: Delivery[]
  /**
   * How many inboxes the notification goes to: the deliveries, plus the
   * entries a fan-out job makes (a broadcast's or topic's audience as it was
   * when the publish committed).
   */
  recipients: number
  /** The audience was too large for one transaction: a fan-out job makes the rest (see {@link Store.fanOut}). */
  pending: boolean
  /**
   * The idempotency key was used before for this request: this is the first
   * publish's answer (its notification's id and time, its recipients), and
   * nothing was stored now (`deliveries` is empty, `pending` false).
   */
  replayed?: true
}

/**
 * A publisher's idempotency key: a publish that carries a key already used
 * for the same request stores nothing and answers as the first did.
 */
export interface IdempotencyKey {
  key: string
  /** How long the store remembers the key, in ms, from the publish that used it first. */
  ttlMs: number
}

/**
 * Every method of {@link Store} but `close`: what the server calls on a store
 * while it runs. The options check requires them (and `close`); metrics time
 * each under its name.
 */
export const STORE_OPERATIONS = [
  'publish',
  'fanOut',
  'latestSeqs',
  'touchUser',
  'after',
  'history',
  'ack',
  'markRead',
  'subscribe',
  'unsubscribe',
  'topics',
  'user',
  'prune',
  'check',
] as const satisfies readonly Exclude<keyof Store, 'close'>[]

/**
 * A user's counters with an ack this process has taken but not written yet
 * (acks gather for a moment before one write records them): a connection
 * made meanwhile starts after it, as it would once written.
 */
export function withUnwrittenAck(state: UserState, unwritten: number | undefined): UserState {
  if (unwritten === undefined) return state
  return { ...state, ackedSeq: Math.max(state.ackedSeq, Math.min(unwritten, state.latestSeq)) }
}

/** How a store may write a publish. */
export interface PublishOptions {
  /**
   * The publish comes from a request of its own (an API call), independent of
   * the others made in the same turn of the event loop: a store may commit it
   * together with them, a moment later. A caller that awaits each publish
   * before it makes the next would only wait longer, so the programmatic API
   * does not ask.
   */
  gather?: boolean
}

/** Most expired idempotency keys a keyed publish removes: each adds one, so they cannot pile up, and none waits long. */
export const EXPIRED_KEYS_BATCH = 100

/** A publish carried a key that was used for a different request. The HTTP API answers 422. */
export class IdempotencyKeyReusedError extends Error {
  override name = 'IdempotencyKeyReusedError' as const
}

/** What a key remembers of its publish. */
export interface KeyRecord {
  fingerprint: string
  id: string
  timestamp: string
  recipients: number
}

/**
 * The publish a key was used for, as a hash of its canonical form: the
 * audience (user ids as a set) and the notification with its defaults, keys
 * in sorted order at every depth. Two requests that would store the same
 * notification for the same audience have the same fingerprint.
 */
export function requestFingerprint(audience: Audience, input: NotificationInput): string {
  const who = 'userIds' in audience ? { userIds: [...new Set(audience.userIds)].sort() } : audience
  const what = { title: input.title, body: input.body, priority: input.priority ?? 'medium', data: input.data ?? null }
  return createHash('sha256')
    .update(canonical({ audience: who, input: what }))
    .digest('base64url')
}

/** JSON with the keys of every object sorted. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

/**
 * The answer to a publish whose key was used before: the first publish's when
 * the request is the same (the notification rebuilt from this request, which
 * is the same, with the first one's id and time); an
 * {@link IdempotencyKeyReusedError} when it is not.
 */
export function replayOf(record: KeyRecord, fingerprint: string, audience: Audience, input: NotificationInput): Published {
  if (record.fingerprint !== fingerprint) {
    throw new IdempotencyKeyReusedError('this idempotency key was used for a different request')
  }
  const notification = { ...storedNotification(input, audience), id: record.id, timestamp: record.timestamp }
  return { notification, deliveries: [], recipients: record.recipients, pending: false, replayed: true }
}

/** One batch of a fan-out job. */
export interface FanOutBatch {
  notification: StoredNotification
  deliveries: Delivery[]
  /** The job is finished with this batch. */
  done: boolean
}

/** Makes the notification a publish stores: a new id, the time now, the priority's default. */
export function storedNotification(input: NotificationInput, audience: Audience): StoredNotification {
  const n: StoredNotification = {
    id: randomUUID(),
    title: input.title,
    body: input.body,
    priority: input.priority ?? 'medium',
    timestamp: new Date().toISOString(),
  }
  if (input.data !== undefined) n.data = input.data
  if ('topic' in audience) n.topic = audience.topic
  return n
}

/** A user's inbox counters. */
export interface UserState {
  latestSeq: number
  ackedSeq: number
  unreadCount: number
  /** The highest seq retention removed (0: none). The inbox holds `floor + 1` to `latestSeq`, without gaps. */
  floor: number
}

/**
 * What retention removes from each inbox: always a prefix, everything at or
 * below a new floor, so an inbox never has a hole.
 */
export interface RetentionRule {
  /**
   * Entries of notifications stored before this time (ISO-8601, as their
   * `timestamp`) go: the longest run of them from the oldest entry on.
   */
  before?: string | undefined
  /** Each user keeps at most this many entries: the newest. */
  maxPerUser?: number | undefined
}

/** What one batch of a retention pass removed. */
export interface PruneBatch {
  /** Inbox entries removed. */
  removed: number
  /** Of those, the unread ones (taken off the users' unread counts). */
  unread: number
  /** Users whose floor moved as far as the rule takes it (one whose entries take several batches counts in the last). */
  users: number
  /** Notifications deleted with the last inbox entry that held them. */
  notifications: number
  /** Where the next batch starts (pass it as `after`); undefined once the pass is over. */
  next: number | undefined
  /** Each user whose unread count the batch lowered: the count now, and the user's latest seq. */
  unreadChanges?: readonly UnreadChange[] | undefined
}

/** A user's unread count after a prune lowered it. */
export interface UnreadChange {
  userId: string
  seq: number
  unreadCount: number
}

/**
 * The seq up to which `rule` removes a user's entries (at least its floor):
 * all but the newest `maxPerUser` go, then those older than `before` (among
 * the newest `maxPerUser` too) from the oldest on. `firstKept(from)` is the seq of the user's
 * first entry after `from` stored at or after `before`, if any.
 */
export function pruneCut(
  user: { floor: number; latest: number },
  rule: RetentionRule,
  firstKept: (from: number) => number | undefined,
): number {
  let upTo = user.floor
  if (rule.maxPerUser !== undefined) upTo = Math.max(upTo, user.latest - rule.maxPerUser)
  if (rule.before !== undefined && upTo < user.latest) {
    const kept = firstKept(upTo)
    upTo = kept === undefined ? user.latest : Math.max(upTo, kept - 1)
  }
  return upTo
}

/** The outcome of marking notifications read. */
export interface ReadChange {
  /** Ids that went from unread to read (empty for `all`). */
  ids: string[]
  all: boolean
  /** The user's latest seq when the change was made: `unreadCount` covers every entry up to it. */
  seq: number
  unreadCount: number
  /** With `all`: the last seq it covered, the latest (`seq`) or the bound asked for when that is lower. */
  upTo?: number
}

/**
 * The durable inbox. Two stores implement it: `SqliteStore` (sqlite.ts, the
 * embedded default) and `PostgresStore` (postgres.ts, shared by several server
 * processes); `test/contract/store.ts` is the suite any store runs against.
 *
 * The rules every method keeps:
 * - Resolve only once the writes are committed (durable): the publish API
 *   answers 201 on the strength of it. Reject instead of guessing; the server
 *   turns a rejection into a 503, an `error` reply or a 1011 close.
 * - Each user's inbox is numbered 1, 2, 3, … by `seq` with no gaps, in
 *   commit order: a reader that has seen seq n never later finds an entry
 *   n' < n that it had not seen (allocate seqs from a per-user counter locked
 *   in the publish's transaction, not from a sequence shared by all).
 * - A user exists once it is touched, subscribed or published to; a broadcast
 *   reaches every user that exists when it commits.
 * - Retention removes a prefix of an inbox and raises the user's floor in the
 *   same transaction (with the unread count lowered by the unread entries it
 *   removed); seqs are never reused, and nothing at or below the floor is a gap.
 */
export interface Store {
  /**
   * Which deployment this store's data belongs to: the same for every
   * process that opens the data, another for any other data (a random token
   * kept with it, made once; a copy of the data carries it, and needs its own). The server stamps the events it hands the
   * broker with it, and drops those stamped with another: two deployments
   * may share a broker's channel by mistake (Redis pub/sub ignores the
   * database number), and their events name users by bare id and seq, so
   * each would send the other's notifications to its own users of the same
   * ids. A store several processes share should have one (SqliteStore and
   * PostgresStore do). Undefined for a store without one (an application's
   * own): its events go unstamped, and a stamped event that reaches it is
   * another deployment's.
   */
  readonly deployment?: string | undefined
  /**
   * Stores the notification once and gives each recipient an inbox entry with
   * its next seq (duplicates in `userIds` count once), all or nothing.
   * Resolves with the entries made. A broadcast or topic publish whose
   * audience is larger than one batch makes the first batch, records a
   * fan-out job for the rest in the same transaction, and resolves `pending`:
   * nothing is one giant transaction, and the job survives a crash. An
   * empty audience (a topic no one follows, a broadcast before any user)
   * stores nothing, and a job that ends with no entry left (its audience
   * gone, its first entries pruned) deletes its notification: no row stays
   * that no inbox holds, which retention could never reach.
   *
   * With an idempotency key, the same transaction records the key, the
   * request's {@link requestFingerprint} and the answer. A key used before
   * (and not expired) stores nothing: the same request resolves with the
   * first answer ({@link Published.replayed}), a different one rejects with
   * {@link IdempotencyKeyReusedError}. Two publishes with one key at once
   * store one notification and resolve alike. A keyed publish also removes
   * up to {@link EXPIRED_KEYS_BATCH} expired keys.
   */
  publish(audience: Audience, input: NotificationInput, idempotency?: IdempotencyKey, options?: PublishOptions): Promise<Published>
  /**
   * Makes the next batch of a pending fan-out job — any job, whichever
   * process's publish made it (one whose process died too) — in one
   * transaction that also records the job's progress, so each recipient gets
   * exactly one entry. Resolves `undefined` when no job waits (or every
   * waiting one is being worked on elsewhere).
   */
  fanOut(): Promise<FanOutBatch | undefined>
  /**
   * The latest seq and unread count of each of these users (absent: no inbox
   * yet). The server compares the seq with what its connections sent, and
   * both with what it read before: the count moving otherwise than the seq is a
   * read change that may not have reached it (another process, no broker).
   */
  latestSeqs(userIds: readonly string[]): Promise<Map<string, { seq: number; unreadCount: number }>>
  /** Records that the user exists (for broadcasts) and returns its counters. */
  touchUser(userId: string): Promise<UserState>
  /** The user's counters, or undefined for a user that does not exist (nothing is recorded). */
  user(userId: string): Promise<UserState | undefined>
  /** Up to `limit` inbox entries with seq > `after`, oldest first. */
  after(userId: string, after: number, limit: number): Promise<Notification[]>
  /** Up to `limit` inbox entries with seq < `before` (all when undefined), newest first. */
  history(userId: string, before: number | undefined, limit: number): Promise<Notification[]>
  /** Moves the acknowledged cursor forward (never back, never past the latest seq); resolves with it (0 for an unknown user). */
  ack(userId: string, seq: number): Promise<number>
  /**
   * Marks entries of this user's inbox read, by notification id (ids not in
   * the inbox, or read already, are ignored) or all up to `upTo` (the latest
   * seq when it is undefined or above it). Resolves with the ids that changed
   * and the new unread count.
   */
  markRead(userId: string, ids: readonly string[] | 'all', upTo?: number): Promise<ReadChange>
  /**
   * Subscribes the user to topics (and records the user), all in one
   * transaction; subscribing twice is once. The user may hold at most `max`
   * subscriptions: topics past that are not subscribed, and resolve as the
   * returned list (in the order given).
   */
  subscribe(userId: string, topics: readonly string[], max: number): Promise<string[]>
  /** Ends subscriptions; one that does not exist is no error. */
  unsubscribe(userId: string, topics: readonly string[]): Promise<void>
  /** The topics the user is subscribed to (checked again at each auth when subscriptions are authorized). */
  topics(userId: string): Promise<string[]>
  /**
   * One batch of a retention pass, in one short transaction. From the users
   * after position `after` (0 to start; each batch says where the next
   * starts), it raises each user's floor to what `rule` removes and deletes
   * those entries, lowers the unread count by the unread ones among them, and
   * deletes each notification whose last entry went (not while a fan-out job
   * still writes it). A batch removes a bounded number of entries: a user
   * with more continues in the next batch. A user busy in another
   * transaction may be left for the next pass.
   */
  prune(rule: RetentionRule, after: number): Promise<PruneBatch>
  /**
   * Verifies that the store takes writes now (a write probe, and room to grow
   * where the store knows its bound); rejects with an Error that says what is
   * wrong. `/healthz` calls it. A store should also refuse to be created on
   * a database it cannot use (corrupted, read-only, unreachable).
   */
  check(): Promise<void>
  /** Releases the database, once what it gathered (acks) is written. Safe to call twice: the second resolves with the first. */
  close(): Promise<void>
}
