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
-- One row written by each health check: proof that the store takes writes.
CREATE TABLE IF NOT EXISTS probe (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  checked_at  TEXT NOT NULL
);
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
/** Pages kept free under `maxBytes` for a health check to call the store full: about one large publish. */
const FULL_HEADROOM_PAGES = 16

/** Options of {@link SqliteStore}. */
export interface SqliteStoreOptions {
  /**
   * Largest size the database may grow to, in bytes. Past it, writes fail:
   * publishes answer 503 and /healthz says the store is full, instead of the
   * disk filling up. @default no limit (the disk's)
   */
  maxBytes?: number
  /** Size the WAL file is cut back to after each checkpoint (it never shrinks otherwise), in bytes. @default 67108864 */
  walSizeLimit?: number
}

const PROBE = 'INSERT INTO probe (id, checked_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at'

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
 *
 * Opening checks the file (`PRAGMA quick_check` and a write) and throws an
 * Error saying what is wrong — corrupted, read-only, not a database — so a
 * broken store refuses to start instead of looking healthy.
 */
export class SqliteStore implements Store {
  readonly #db: Database.Database
  readonly #checkpoint: NodeJS.Timeout
  /** Pages the database may have (`maxBytes`), if bounded. */
  readonly #maxPages: number | undefined
  /** The last failure of work the store does on its own (the checkpoint), until one succeeds. */
  #background: Error | undefined
  readonly #statements
  readonly #publishTx: Database.Transaction<(audience: Audience, input: NotificationInput) => Published>
  readonly #markReadTx: Database.Transaction<(userId: string, ids: readonly string[] | 'all') => ReadChange>
  readonly #subscribeTx: Database.Transaction<(userId: string, topics: readonly string[], max: number) => string[]>
  readonly #unsubscribeTx: Database.Transaction<(userId: string, topics: readonly string[]) => void>

  constructor(file: string, options: SqliteStoreOptions = {}) {
    const { maxBytes, walSizeLimit = 64 * 1024 * 1024 } = options
    if (maxBytes !== undefined && !(Number.isSafeInteger(maxBytes) && maxBytes >= 64 * 1024)) {
      throw new TypeError(`SqliteStore: options.maxBytes must be a whole number of bytes ≥ 65536, got ${maxBytes}`)
    }
    if (!(Number.isSafeInteger(walSizeLimit) && walSizeLimit >= 0)) {
      throw new TypeError(`SqliteStore: options.walSizeLimit must be a whole number of bytes ≥ 0, got ${walSizeLimit}`)
    }
    let db: Database.Database
    try {
      db = new Database(file)
    } catch (error) {
      throw new Error(`cannot open the SQLite database "${file}": ${(error as Error).message}`)
    }
    this.#db = db
    try {
      db.pragma('journal_mode = WAL')
      db.pragma('synchronous = NORMAL')
      db.pragma('busy_timeout = 5000')
      db.pragma(`journal_size_limit = ${walSizeLimit}`)
      // Checkpoint on a timer instead of inside whichever commit crosses 1000 pages of WAL:
      // that commit (a publish the API is waiting for) would otherwise pay for it.
      db.pragma('wal_autocheckpoint = 0')
      db.pragma('foreign_keys = ON')
      this.#maxPages = maxBytes === undefined ? undefined : Math.floor(maxBytes / (db.pragma('page_size', { simple: true }) as number))
      if (this.#maxPages !== undefined) db.pragma(`max_page_count = ${this.#maxPages}`)
      db.exec(SCHEMA)
      const check = db.pragma('quick_check', { simple: true })
      if (check !== 'ok') throw new Error(`it failed its integrity check (${String(check).slice(0, 200)})`)
      db.prepare(PROBE).run(new Date().toISOString())
    } catch (error) {
      db.close()
      throw new Error(`the SQLite database "${file}" cannot be used: ${(error as Error).message}`)
    }
    this.#checkpoint = setInterval(() => this.#fold('PASSIVE'), CHECKPOINT_MS)
    this.#checkpoint.unref()
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
      probe: db.prepare(PROBE),
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
      topics: db.prepare('SELECT topic FROM subscriptions WHERE user_id = ?'),
    }
    this.#publishTx = db.transaction(this.#publish)
    this.#markReadTx = db.transaction(this.#markRead)
    this.#subscribeTx = db.transaction(this.#subscribe)
    this.#unsubscribeTx = db.transaction((userId: string, topics: readonly string[]) => {
      for (const topic of topics) this.#statements.unsubscribe.run(topic, userId)
    })
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

  async subscribe(userId: string, topics: readonly string[], max: number): Promise<string[]> {
    return this.#subscribeTx.immediate(userId, topics, max)
  }

  readonly #subscribe = (userId: string, topics: readonly string[], max: number): string[] => {
    const s = this.#statements
    s.touchUser.run(userId)
    const held = new Set((s.topics.all(userId) as { topic: string }[]).map((r) => r.topic))
    const full: string[] = []
    for (const topic of topics) {
      if (held.has(topic)) continue
      if (held.size >= max) {
        full.push(topic)
        continue
      }
      s.subscribe.run(topic, userId)
      held.add(topic)
    }
    return full
  }

  async unsubscribe(userId: string, topics: readonly string[]): Promise<void> {
    this.#unsubscribeTx.immediate(userId, topics)
  }

  async topics(userId: string): Promise<string[]> {
    return (this.#statements.topics.all(userId) as { topic: string }[]).map((r) => r.topic)
  }

  /**
   * A write probe; with `maxBytes`, room to grow as well; and no failure of
   * the store's own background work since its last success.
   */
  async check(): Promise<void> {
    if (this.#background) throw this.#background
    this.#statements.probe.run(new Date().toISOString())
    if (this.#maxPages !== undefined) {
      const used =
        (this.#db.pragma('page_count', { simple: true }) as number) - (this.#db.pragma('freelist_count', { simple: true }) as number)
      if (used > this.#maxPages - FULL_HEADROOM_PAGES) throw new Error(`the database is full (maxBytes: ${this.#maxPages} pages in use)`)
    }
  }

  /** Folds the WAL back into the database. Runs on a timer: a failure (a full disk) is kept for check(), never thrown. */
  #fold(mode: 'PASSIVE' | 'TRUNCATE'): void {
    try {
      this.#db.pragma(`wal_checkpoint(${mode})`)
      this.#background = undefined
    } catch (error) {
      this.#background = new Error(`WAL checkpoint failed: ${(error as Error).message}`)
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#checkpoint)
    if (!this.#db.open) return
    this.#fold('TRUNCATE')
    this.#db.close()
  }
}
