/**
 * The wire protocol: JSON text frames, each an object with a string `type`.
 * It extends the protocol of the article belfry grew from (`auth`,
 * `auth_success`, `notification` with top-level `title`/`body`/`priority`/
 * `timestamp`), so clients and servers that speak only that still work.
 *
 * ```
 * client                                   server
 *   │ ── auth {token, userId?, since?} ──────► │ verify JWT (HS256)
 *   │ ◄── auth_success {seq, unreadCount,      │
 *   │                   oldestSeq} ─────────── │
 *   │ ◄── notification × n (replay) ────────── │ seq > since (or > acked cursor)
 *   │ ◄── replayed {more, seq} ─────────────── │ more: true → page with `resume`
 *   │ ── resume {since} ──────────────────────► │ (only while more was true)
 *   │ ◄── notification (live) ──────────────── │
 *   │ ── ack {seq} ───────────────────────────► │ cumulative
 * ```
 */

/** How loud a notification is. */
export type Priority = 'low' | 'medium' | 'high'

/** Any JSON value. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json }

/** A JSON object: the shape of a notification's app payload. */
export type JsonObject = { [key: string]: Json }

/** A notification as it travels to the client. */
export interface Notification<Data extends object = JsonObject> {
  /** Server-assigned, unique id of the notification. */
  id: string
  /** Per-user sequence number: strictly increasing, no gaps in one user's inbox. */
  seq: number
  title: string
  body: string
  priority: Priority
  /** ISO-8601 server time of creation. */
  timestamp: string
  /** App payload. */
  data?: Data
  /** Set when the notification was published to a topic. */
  topic?: string
  /** Read state when it was sent. */
  read: boolean
  /**
   * True when it comes as catch-up — a replay after a connect, or the repair
   * of a gap — rather than live as it was published. A desktop notification,
   * say, is for live ones only.
   */
  replayed?: boolean
}

// ── client → server ──────────────────────────────────────────────────────────

export interface AuthFrame {
  type: 'auth'
  /** HS256 JWT whose `sub` is the user. */
  token: string
  /** Optional; must equal the token's `sub`. */
  userId?: string
  /** Last `seq` the client handed to the app; replay starts after it. */
  since?: number
}

/** Cumulative acknowledgement: everything up to and including `seq` was delivered. */
export interface AckFrame {
  type: 'ack'
  seq: number
}

/** Asks for the next replay page after a `replayed` frame said `more`. */
export interface ResumeFrame {
  type: 'resume'
  since: number
  requestId?: string
}

/** Marks some notifications (by id) or all of them read. */
export interface MarkReadFrame {
  type: 'mark_read'
  ids?: string[]
  all?: boolean
  /** With `all`: only entries up to this seq (the highest the client knew of when the user asked); the latest when absent. */
  seq?: number
  requestId?: string
}

/**
 * Subscribes to (or unsubscribes from) one topic, or several at once with
 * `topics`: a client restoring its topics after a reconnect sends one frame.
 * Exactly one of `topic` and `topics`.
 */
export interface SubscribeFrame {
  type: 'subscribe' | 'unsubscribe'
  topic?: string
  topics?: string[]
  requestId?: string
}

/** One page of history, newest first, with `seq` below `before`. */
export interface HistoryFrame {
  type: 'history'
  before?: number
  limit?: number
  requestId?: string
}

export interface PingFrame {
  type: 'ping'
  requestId?: string
}

export type ClientFrame = AuthFrame | AckFrame | ResumeFrame | MarkReadFrame | SubscribeFrame | HistoryFrame | PingFrame

/** The client frames that are answered, each with the frame that answers it (echoing its `requestId`). */
export interface Replies {
  resume: ReplayedFrame
  mark_read: ReadFrame
  subscribe: SubscribedFrame
  unsubscribe: SubscribedFrame
  history: HistoryPageFrame
  ping: PongFrame
}

/** A client frame that gets a reply. */
export type RequestFrame = Extract<ClientFrame, { type: keyof Replies }>

// ── server → client ──────────────────────────────────────────────────────────

export interface AuthSuccessFrame {
  type: 'auth_success'
  message: string
  userId: string
  /** The user's latest `seq`. */
  seq: number
  unreadCount: number
  /**
   * The user's floor: retention removed every notification with a seq up to
   * it (0: none removed). A client whose cursor is below it missed those, and
   * its replay starts after the floor. Absent from older servers.
   */
  oldestSeq?: number
  /**
   * The server's heartbeat pings carry the last `seq` it sent, and their
   * pongs (which every WebSocket sends by itself) ack it: the client need not
   * send `ack` frames. Absent from older servers.
   */
  pingAcks?: boolean
}

export interface AuthErrorFrame {
  type: 'auth_error'
  code: string
  message: string
}

export interface NotificationFrame<Data extends object = JsonObject> extends Notification<Data> {
  type: 'notification'
}

/** Ends one replay round. */
export interface ReplayedFrame {
  type: 'replayed'
  /** True when more notifications are waiting: send `resume` with the last seq. */
  more: boolean
  /** The last seq sent in this round (or the cursor, when nothing was sent). */
  seq: number
  requestId?: string
}

/** Read state changed on one of the user's connections (pushed to all of them). */
export interface ReadFrame {
  type: 'read'
  /** Ids that became read; in the reply to a `mark_read` of ids, every id it asked for (none is unread now). Empty when `all` is true. */
  ids: string[]
  /** Everything with seq ≤ `seq` became read. */
  all: boolean
  /**
   * The user's latest seq when the change was made; with `all`, the last seq it covered. When that is
   * below the latest (a bounded mark all), a frame at the latest, `all` false and no ids, follows at once.
   */
  seq: number
  unreadCount: number
  requestId?: string
}

export interface HistoryPageFrame<Data extends object = JsonObject> {
  type: 'history'
  items: Notification<Data>[]
  /** Pass as `before` to get the next (older) page; absent on the last page. */
  next?: number
  requestId?: string
}

/** A topic the server would not subscribe the user to, and why. */
export interface RefusedTopic {
  topic: string
  /** `forbidden` (not authorized), `topic_too_long`, `bad_topic` or `too_many_subscriptions`. */
  code: ErrorCode
}

/**
 * The answer to a subscribe or unsubscribe: `topic` for the one-topic form
 * (a refusal is an `error` reply instead), `topics` and `refused` for the
 * batch form (the topics subscribed, or unsubscribed, and those refused).
 */
export interface SubscribedFrame {
  type: 'subscribed' | 'unsubscribed'
  topic?: string
  topics?: string[]
  refused?: RefusedTopic[]
  requestId?: string
}

export interface PongFrame {
  type: 'pong'
  requestId?: string
}

export interface ErrorFrame {
  type: 'error'
  code: ErrorCode
  message: string
  requestId?: string
}

export type ServerFrame<Data extends object = JsonObject> =
  | AuthSuccessFrame
  | AuthErrorFrame
  | NotificationFrame<Data>
  | ReplayedFrame
  | ReadFrame
  | HistoryPageFrame<Data>
  | SubscribedFrame
  | PongFrame
  | ErrorFrame

/** Codes carried by `error` and `auth_error` frames. */
export const ErrorCode = {
  BadJson: 'bad_json',
  BadFrame: 'bad_frame',
  BinaryFrame: 'binary_frame',
  UnknownType: 'unknown_type',
  NotAuthenticated: 'not_authenticated',
  AlreadyAuthenticated: 'already_authenticated',
  TokenInvalid: 'token_invalid',
  TokenExpired: 'token_expired',
  Forbidden: 'forbidden',
  RateLimited: 'rate_limited',
  TopicTooLong: 'topic_too_long',
  BadTopic: 'bad_topic',
  TooManySubscriptions: 'too_many_subscriptions',
  Internal: 'internal',
} as const

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]
