import type { JsonObject, Notification, Priority } from '../../protocol/index.js'

/** What a publisher supplies. */
export interface NotificationInput {
  title: string
  body: string
  /** @default 'medium' */
  priority?: Priority
  data?: JsonObject
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
  deliveries: Delivery[]
}

/** A user's inbox counters. */
export interface UserState {
  latestSeq: number
  ackedSeq: number
  unreadCount: number
}

/** The outcome of marking notifications read. */
export interface ReadChange {
  /** Ids that went from unread to read (empty for `all`). */
  ids: string[]
  all: boolean
  /** The user's latest seq when the change was made. */
  seq: number
  unreadCount: number
}

/**
 * The durable inbox. The embedded default is SQLite; a shared database can
 * take its place for several server processes. Every method resolves only
 * once its writes are committed.
 */
export interface Store {
  /** Creates the notification and one inbox entry per recipient, in one transaction. */
  publish(audience: Audience, input: NotificationInput): Promise<Published>
  /** Records that the user exists (for broadcasts) and returns its counters. */
  touchUser(userId: string): Promise<UserState>
  /** Up to `limit` notifications with seq > `after`, oldest first. */
  after(userId: string, after: number, limit: number): Promise<Notification[]>
  /** Up to `limit` notifications with seq < `before`, newest first. */
  history(userId: string, before: number | undefined, limit: number): Promise<Notification[]>
  /** Moves the acknowledged cursor forward (never back, never past the latest seq). */
  ack(userId: string, seq: number): Promise<number>
  markRead(userId: string, ids: readonly string[] | 'all'): Promise<ReadChange>
  subscribe(userId: string, topic: string): Promise<void>
  unsubscribe(userId: string, topic: string): Promise<void>
  /** Topics the user is subscribed to. */
  topics(userId: string): Promise<string[]>
  close(): Promise<void>
}
