import { randomUUID } from 'node:crypto'
import Database from 'better-sqlite3'
import type { JsonObject, Notification, Priority } from '../../protocol/index.js'
import type { Audience, Delivery, NotificationInput, Published, ReadChange, Store, StoredNotification, UserState } from './store.js'

const SCHEMA = `
CREATE TABLE IF NOT EXISTS users (
  id          TEXT PRIMARY KEY,
  latest_seq  INTEGER NOT NULL DEFAULT 0,
  acked_seq   INTEGER NOT NULL DEFAULT 0,
  unread      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notifications (
  id          TEXT PRIMARY KEY,
  title       TEXT NOT NULL,
  body        TEXT NOT NULL,
  priority    TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  data        TEXT,
  topic       TEXT
);
CREATE TABLE IF NOT EXISTS inbox (
  user_id          TEXT NOT NULL,
  seq              INTEGER NOT NULL,
  notification_id  TEXT NOT NULL,
  read             INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, seq)
) WITHOUT ROWID;
-- No index on notification_id: marking by id scans the user's unread entries in the primary key,
-- and a second index on every inbox entry makes each broadcast's commit about twice as slow.
CREATE TABLE IF NOT EXISTS subscriptions (
  topic    TEXT NOT NULL,
  user_id  TEXT NOT NULL,
  PRIMARY KEY (topic, user_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS subscriptions_by_user ON subscriptions (user_id);
`

interface Row {
  id: string
  seq: number
  title: string
  body: string
  priority: Priority
  created_at: string
  data: string | null
  topic: string | null
  read: number
}

/** How often the WAL is folded back into the database file. */
const CHECKPOINT_MS = 1000

const SELECT =
  'SELECT n.id, i.seq, n.title, n.body, n.priority, n.created_at, n.data, n.topic, i.read FROM inbox i JOIN notifications n ON n.id = i.notification_id'

function toNotification(row: Row): Notification {
  const n: Notification = {
    id: row.id,
    seq: row.seq,
    title: row.title,
    body: row.body,
    priority: row.priority,
    timestamp: row.created_at,
    read: row.read === 1,
  }
  if (row.data !== null) n.data = JSON.parse(row.data) as JsonObject
  if (row.topic !== null) n.topic = row.topic
  return n
}

/**
 * The embedded store: one SQLite file in WAL mode. A commit survives a crash
 * of the process (`kill -9`); with `synchronous = NORMAL` the last commits can
 * be lost only if the machine itself loses power.
 */
export class SqliteStore implements Store {
  readonly #db: Database.Database
  readonly #checkpoint: NodeJS.Timeout
  readonly #statements
  readonly #publishTx: Database.Transaction<(audience: Audience, input: NotificationInput) => Published>
  readonly #markReadTx: Database.Transaction<(userId: string, ids: readonly string[] | 'all') => ReadChange>

  constructor(file: string) {
    this.#db = new Database(file)
    this.#db.pragma('journal_mode = WAL')
    this.#db.pragma('synchronous = NORMAL')
    this.#db.pragma('busy_timeout = 5000')
    // Checkpoint on a timer instead of inside whichever commit crosses 1000 pages of WAL:
    // that commit (a publish the API is waiting for) would otherwise pay for it.
    this.#db.pragma('wal_autocheckpoint = 0')
    this.#checkpoint = setInterval(() => this.#db.pragma('wal_checkpoint(PASSIVE)'), CHECKPOINT_MS)
    this.#checkpoint.unref()
    this.#db.pragma('foreign_keys = ON')
    this.#db.exec(SCHEMA)
    const db = this.#db
    this.#statements = {
      insertNotification: db.prepare(
        'INSERT INTO notifications (id, title, body, priority, created_at, data, topic) VALUES (@id, @title, @body, @priority, @timestamp, @data, @topic)',
      ),
      bumpUser: db.prepare(
        `INSERT INTO users (id, latest_seq, unread) VALUES (?, 1, 1)
         ON CONFLICT (id) DO UPDATE SET latest_seq = latest_seq + 1, unread = unread + 1
         RETURNING latest_seq AS seq`,
      ),
      insertInbox: db.prepare('INSERT INTO inbox (user_id, seq, notification_id) VALUES (?, ?, ?)'),
      bumpAll: db.prepare('UPDATE users SET latest_seq = latest_seq + 1, unread = unread + 1 RETURNING id AS userId, latest_seq AS seq'),
      // Set-based: one statement writes every inbox entry of a broadcast or topic publish.
      fillAll: db.prepare('INSERT INTO inbox (user_id, seq, notification_id) SELECT id, latest_seq, ? FROM users'),
      bumpTopic: db.prepare(
        `UPDATE users SET latest_seq = latest_seq + 1, unread = unread + 1
         WHERE id IN (SELECT user_id FROM subscriptions WHERE topic = ?)
         RETURNING id AS userId, latest_seq AS seq`,
      ),
      fillTopic: db.prepare(
        `INSERT INTO inbox (user_id, seq, notification_id)
         SELECT u.id, u.latest_seq, ? FROM subscriptions s JOIN users u ON u.id = s.user_id WHERE s.topic = ?`,
      ),
      touchUser: db.prepare('INSERT INTO users (id) VALUES (?) ON CONFLICT (id) DO NOTHING'),
      getUser: db.prepare('SELECT latest_seq AS latestSeq, acked_seq AS ackedSeq, unread AS unreadCount FROM users WHERE id = ?'),
      after: db.prepare(`${SELECT} WHERE i.user_id = ? AND i.seq > ? ORDER BY i.seq LIMIT ?`),
      history: db.prepare(`${SELECT} WHERE i.user_id = ? AND i.seq < ? ORDER BY i.seq DESC LIMIT ?`),
      ack: db.prepare('UPDATE users SET acked_seq = max(acked_seq, min(?, latest_seq)) WHERE id = ? RETURNING acked_seq AS ackedSeq'),
      // Scans the user's unread entries through the primary key's user_id prefix.
      markIds: db.prepare(
        `UPDATE inbox SET read = 1 WHERE user_id = ? AND read = 0
         AND notification_id IN (SELECT value FROM json_each(?)) RETURNING notification_id AS id`,
      ),
      markAll: db.prepare('UPDATE inbox SET read = 1 WHERE user_id = ? AND read = 0 AND seq <= ?'),
      subtractUnread: db.prepare(
        'UPDATE users SET unread = max(0, unread - ?) WHERE id = ? RETURNING unread AS unreadCount, latest_seq AS seq',
      ),
      zeroUnread: db.prepare('UPDATE users SET unread = 0 WHERE id = ? RETURNING unread AS unreadCount, latest_seq AS seq'),
      subscribe: db.prepare('INSERT INTO subscriptions (topic, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING'),
      unsubscribe: db.prepare('DELETE FROM subscriptions WHERE topic = ? AND user_id = ?'),
    }
    this.#publishTx = db.transaction(this.#publish)
    this.#markReadTx = db.transaction(this.#markRead)
  }

  /** Runs the whole fan-out in one transaction: all inbox entries or none. */
  readonly #publish = (audience: Audience, input: NotificationInput): Published => {
    const s = this.#statements
    const notification: StoredNotification = {
      id: randomUUID(),
      title: input.title,
      body: input.body,
      priority: input.priority ?? 'medium',
      timestamp: new Date().toISOString(),
    }
    if (input.data !== undefined) notification.data = input.data
    if ('topic' in audience) notification.topic = audience.topic
    s.insertNotification.run({
      ...notification,
      data: input.data === undefined ? null : JSON.stringify(input.data),
      topic: notification.topic ?? null,
    })
    if ('userIds' in audience) {
      const deliveries = [...new Set(audience.userIds)].map((userId) => ({ userId, seq: (s.bumpUser.get(userId) as { seq: number }).seq }))
      for (const d of deliveries) s.insertInbox.run(d.userId, d.seq, notification.id)
      return { notification, deliveries }
    }
    if ('topic' in audience) {
      const deliveries = s.bumpTopic.all(audience.topic) as Delivery[]
      s.fillTopic.run(notification.id, audience.topic)
      return { notification, deliveries }
    }
    const deliveries = s.bumpAll.all() as Delivery[]
    s.fillAll.run(notification.id)
    return { notification, deliveries }
  }

  async publish(audience: Audience, input: NotificationInput): Promise<Published> {
    return this.#publishTx.immediate(audience, input)
  }

  async touchUser(userId: string): Promise<UserState> {
    this.#statements.touchUser.run(userId)
    return this.#statements.getUser.get(userId) as UserState
  }

  async after(userId: string, after: number, limit: number): Promise<Notification[]> {
    return (this.#statements.after.all(userId, after, limit) as Row[]).map(toNotification)
  }

  async history(userId: string, before: number | undefined, limit: number): Promise<Notification[]> {
    return (this.#statements.history.all(userId, before ?? Number.MAX_SAFE_INTEGER, limit) as Row[]).map(toNotification)
  }

  async ack(userId: string, seq: number): Promise<number> {
    const row = this.#statements.ack.get(seq, userId) as { ackedSeq: number } | undefined
    return row?.ackedSeq ?? 0
  }

  async markRead(userId: string, ids: readonly string[] | 'all'): Promise<ReadChange> {
    return this.#markReadTx.immediate(userId, ids)
  }

  readonly #markRead = (userId: string, ids: readonly string[] | 'all'): ReadChange => {
    const s = this.#statements
    if (ids === 'all') {
      const user = s.getUser.get(userId) as UserState | undefined
      const seq = user?.latestSeq ?? 0
      s.markAll.run(userId, seq)
      const row = s.zeroUnread.get(userId) as { unreadCount: number; seq: number } | undefined
      return { ids: [], all: true, seq, unreadCount: row?.unreadCount ?? 0 }
    }
    const changed = (s.markIds.all(userId, JSON.stringify(ids)) as { id: string }[]).map((r) => r.id)
    const row = s.subtractUnread.get(changed.length, userId) as { unreadCount: number; seq: number } | undefined
    return { ids: changed, all: false, seq: row?.seq ?? 0, unreadCount: row?.unreadCount ?? 0 }
  }

  async subscribe(userId: string, topic: string): Promise<void> {
    this.#statements.touchUser.run(userId)
    this.#statements.subscribe.run(topic, userId)
  }

  async unsubscribe(userId: string, topic: string): Promise<void> {
    this.#statements.unsubscribe.run(topic, userId)
  }

  async close(): Promise<void> {
    clearInterval(this.#checkpoint)
    if (!this.#db.open) return
    this.#db.pragma('wal_checkpoint(TRUNCATE)')
    this.#db.close()
  }
}
