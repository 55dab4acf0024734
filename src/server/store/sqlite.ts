import { statSync } from 'node:fs'
import Database from 'better-sqlite3'
import type { JsonObject, Notification, Priority } from '../../protocol/index.js'
import { ACK_WINDOW_MS, ackWindow, Batcher, newUserWindow } from './batch.js'
import { migrate, SCHEMA_VERSION } from './sqlite-schema.js'
import {
  type Audience,
  type Delivery,
  EXPIRED_KEYS_BATCH,
  type FanOutBatch,
  type IdempotencyKey,
  type KeyRecord,
  type NotificationInput,
  type PruneBatch,
  type Published,
  type PublishOptions,
  pruneCut,
  type ReadChange,
  type RetentionRule,
  replayOf,
  requestFingerprint,
  type Store,
  type StoredNotification,
  storedNotification,
  type UnreadChange,
  type UserState,
  withUnwrittenAck,
} from './store.js'

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
/** How long a write waits for another process's to end before it fails as busy (ms). */
const BUSY_TIMEOUT_MS = 5000
/**
 * How long opening the store waits for another process's migration of the file (ms): a large
 * database's takes longer than {@link BUSY_TIMEOUT_MS} (10 million inbox entries of belfry 0.1.0,
 * about 10 s). As long as PostgresStore's processes wait for one.
 */
const MIGRATION_WAIT_MS = 60 * 60 * 1000
/** Waits `ms` on this thread (the store opens synchronously). */
const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
/** Bytes each WAL frame adds to its page. */
const WAL_FRAME_HEADER = 24
/**
 * How long a checkpoint that starts the WAL over may wait for another process's write to end (ms). The
 * wait blocks this process's event loop; a write (a commit of a turn's publishes) takes a few ms. Not
 * long enough: it is tried again at the next checkpoint.
 */
const RESTART_WAIT_MS = 50
/** Pages kept free under `maxBytes` for a health check to call the store full: about one large publish. */
const FULL_HEADROOM_PAGES = 16
/**
 * Pages past `maxBytes` a retention batch may use: SQLite rewrites a row it
 * updates (a notification's `refs`), the new copy's overflow pages taken
 * before the old ones are freed, so a store at its limit could not otherwise
 * be pruned. About the largest notification's size, several times over.
 */
const PRUNE_HEADROOM_PAGES = 64
/** Users one retention batch looks at. */
const PRUNE_USERS = 500
/**
 * The inbox entries (by seq) a mark read looks through at a time: a long
 * inbox is read in parts, the server's other work done between them (an id in
 * none of it is looked for to the end; a user may have any number unread).
 */
export const MARK_SCAN_SEQS = 4096

/** The rest of this turn of the event loop: I/O and timers waiting run first. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Options of {@link SqliteStore}. */
export interface SqliteStoreOptions {
  /**
   * Largest size the database may grow to, in bytes. Past it, writes fail:
   * publishes answer 503 and /healthz says the store is full, instead of the
   * disk filling up. @default no limit (the disk's)
   */
  maxBytes?: number | undefined
  /** Size the WAL file is cut back to after each checkpoint (it never shrinks otherwise), in bytes. @default 67108864 */
  walSizeLimit?: number | undefined
  /** Most inbox entries one transaction makes: a larger broadcast or topic publish continues as a fan-out job. @default 1000 */
  fanOutBatch?: number | undefined
  /**
   * Most inbox entries one retention batch removes: SQLite writes one
   * transaction at a time, and publishes wait for it. @default 1000
   */
  pruneBatch?: number | undefined
}

/** A publish waiting for the end of the turn, and its caller. */
interface QueuedPublish {
  audience: Audience
  input: NotificationInput
  idempotency: IdempotencyKey | undefined
  resolve(published: Published): void
  reject(error: unknown): void
}

/** A pending fan-out job, as its row holds it. */
interface Job {
  no: number
  notification_no: number
  topic: string | null
  after: number
  up_to: number
}

interface NotificationRow {
  no: number
  id: string
  title: string
  body: string
  priority: Priority
  created_at: string
  data: string | null
  topic: string | null
}

const PROBE = 'INSERT INTO probe (id, checked_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at'

const SELECT =
  'SELECT n.id, i.seq, n.title, n.body, n.priority, n.created_at, n.data, n.topic, i.read FROM inbox i JOIN notifications n ON n.no = i.notification_no'
/** The user's `no`, in a statement whose first parameter is the user id. */
const USER_NO = '(SELECT no FROM users WHERE id = ?)'

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
 * Puts the file in WAL mode. Two processes doing so at once on a new file: SQLite refuses one at once
 * (SQLITE_BUSY without its busy wait), so that one tries again, for up to {@link BUSY_TIMEOUT_MS}.
 */
function walMode(db: Database.Database): void {
  const end = performance.now() + BUSY_TIMEOUT_MS
  for (;;) {
    try {
      db.pragma('journal_mode = WAL')
      return
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'SQLITE_BUSY' || performance.now() > end) throw error
      pause(10)
    }
  }
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
  /**
   * This database's deployment token, made once with it (see {@link Store.deployment}): the processes
   * sharing the file (a drain's successor beside its predecessor, with a broker between them) have
   * the same. A copy of the file carries it too: one that shares a broker channel with the original
   * needs its own, `UPDATE deployment SET token = lower(hex(randomblob(16)))`.
   */
  readonly deployment: string
  readonly #checkpoint: NodeJS.Timeout
  /** The database file as opened (device and inode), or undefined for an in-memory database. */
  readonly #file: { path: string; dev: number; ino: number } | undefined
  /** The file was found removed or replaced: the connection is closed, and every operation refuses with this. */
  #gone: Error | undefined
  /** Pages the database may have (`maxBytes`), if bounded. */
  readonly #maxPages: number | undefined
  /** WAL frames past which a checkpoint starts the WAL over even while another process writes ({@link #fold}). */
  readonly #walFrames: number
  readonly #batch: number
  readonly #pruneBatch: number
  /** Marks in progress: one of a long inbox goes in parts, and close() waits for it. */
  readonly #marks = new Set<Promise<ReadChange>>()
  #closing = false
  /** The last failure of work the store does on its own (the checkpoint), until one succeeds. */
  #background: Error | undefined
  readonly #s
  readonly #publishTx: Database.Transaction<(audience: Audience, input: NotificationInput, idempotency?: IdempotencyKey) => Published>
  readonly #fanOutTx: Database.Transaction<() => FanOutBatch | undefined>
  readonly #markSeqsTx: Database.Transaction<(userId: string, found: ReadonlyMap<number, string>) => ReadChange>
  readonly #markRangeTx: Database.Transaction<(userId: string, after: number, upTo: number) => void>
  readonly #markRestTx: Database.Transaction<(userId: string, after: number, upTo: number) => ReadChange>
  readonly #subscribeTx: Database.Transaction<(userId: string, topics: readonly string[], max: number) => string[]>
  readonly #unsubscribeTx: Database.Transaction<(userId: string, topics: readonly string[]) => void>
  /** Acks, by user (the highest seq): many (one per client per burst of deliveries), none urgent. */
  readonly #acks: Batcher<number, number>
  /** Users new to the store, to be recorded (a reconnect storm of new users). */
  readonly #newUsers: Batcher<undefined, UserState>
  readonly #pruneTx: Database.Transaction<(rule: RetentionRule, after: number) => PruneBatch>
  /** Gathered publishes of this turn of the event loop: committed together at its end. */
  #queued: QueuedPublish[] = []
  readonly #groupTx: Database.Transaction<(queued: readonly QueuedPublish[]) => (Published | { failed: unknown })[]>

  constructor(file: string, options: SqliteStoreOptions = {}) {
    const { maxBytes, walSizeLimit = 64 * 1024 * 1024, fanOutBatch = 1000, pruneBatch = 1000 } = options
    if (maxBytes !== undefined && !(Number.isSafeInteger(maxBytes) && maxBytes >= 64 * 1024)) {
      throw new TypeError(`SqliteStore: options.maxBytes must be a whole number of bytes ≥ 65536, got ${maxBytes}`)
    }
    if (!(Number.isSafeInteger(walSizeLimit) && walSizeLimit >= 0)) {
      throw new TypeError(`SqliteStore: options.walSizeLimit must be a whole number of bytes ≥ 0, got ${walSizeLimit}`)
    }
    if (!(Number.isSafeInteger(fanOutBatch) && fanOutBatch >= 1)) {
      throw new TypeError(`SqliteStore: options.fanOutBatch must be a whole number ≥ 1, got ${fanOutBatch}`)
    }
    if (!(Number.isSafeInteger(pruneBatch) && pruneBatch >= 1)) {
      throw new TypeError(`SqliteStore: options.pruneBatch must be a whole number ≥ 1, got ${pruneBatch}`)
    }
    this.#batch = fanOutBatch
    this.#pruneBatch = pruneBatch
    let db: Database.Database
    try {
      db = new Database(file)
    } catch (error) {
      throw new Error(`cannot open the SQLite database "${file}": ${(error as Error).message}`)
    }
    this.#db = db
    try {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
      walMode(db)
      db.pragma('synchronous = NORMAL')
      db.pragma(`journal_size_limit = ${walSizeLimit}`)
      // Checkpoint on a timer instead of inside whichever commit crosses 1000 pages of WAL:
      // that commit (a publish the API is waiting for) would otherwise pay for it.
      db.pragma('wal_autocheckpoint = 0')
      // Before the size limit: a migration may copy a table (the old copy's pages are free after it).
      // Another process's migration (processes starting together on a new or old file) is waited for; a file of
      // this version needs none, and takes no write lock here (another's long write is waited for as any write).
      if (db.pragma('user_version', { simple: true }) !== SCHEMA_VERSION) {
        db.pragma(`busy_timeout = ${MIGRATION_WAIT_MS}`)
        migrate(db)
        db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
      }
      this.deployment = (db.prepare('SELECT token FROM deployment').get() as { token: string }).token
      const pageSize = db.pragma('page_size', { simple: true }) as number
      this.#walFrames = Math.floor(walSizeLimit / (pageSize + WAL_FRAME_HEADER))
      this.#maxPages = maxBytes === undefined ? undefined : Math.floor(maxBytes / pageSize)
      if (this.#maxPages !== undefined) db.pragma(`max_page_count = ${this.#maxPages}`)
      const check = db.pragma('quick_check', { simple: true })
      if (check !== 'ok') throw new Error(`it failed its integrity check (${String(check).slice(0, 200)})`)
      db.prepare(PROBE).run(new Date().toISOString())
    } catch (error) {
      db.close()
      throw new Error(`the SQLite database "${file}" cannot be used: ${(error as Error).message}`)
    }
    const opened = file === '' || file === ':memory:' ? undefined : statSync(file)
    this.#file = opened && { path: file, dev: opened.dev, ino: opened.ino }
    this.#checkpoint = setInterval(() => this.#fold('PASSIVE'), CHECKPOINT_MS)
    this.#checkpoint.unref()
    this.#s = {
      insertNotification: db.prepare(
        `INSERT INTO notifications (id, title, body, priority, created_at, data, topic, refs)
         VALUES (@id, @title, @body, @priority, @timestamp, @data, @topic, @refs) RETURNING no`,
      ),
      notification: db.prepare('SELECT * FROM notifications WHERE no = ?'),
      ensureUser: db.prepare('INSERT INTO users (id) VALUES (?) ON CONFLICT (id) DO NOTHING'),
      bumpUser: db.prepare(
        `INSERT INTO users (id, latest_seq, unread) VALUES (?, 1, 1)
         ON CONFLICT (id) DO UPDATE SET latest_seq = latest_seq + 1, unread = unread + 1
         RETURNING no, latest_seq AS seq`,
      ),
      insertInbox: db.prepare('INSERT INTO inbox (user_no, seq, notification_no) VALUES (?, ?, ?)'),
      // The audience of a broadcast or a topic publish when it commits, by `no`.
      lastUser: db.prepare('SELECT coalesce(max(no), 0) AS upTo, count(*) AS size FROM users'),
      lastSubscription: db.prepare('SELECT coalesce(max(no), 0) AS upTo, count(*) AS size FROM subscriptions WHERE topic = ?'),
      // The end of the next batch: the batch-th `no` after `after`, or up_to.
      batchEndUsers: db.prepare('SELECT no FROM users WHERE no > ? AND no <= ? ORDER BY no LIMIT 1 OFFSET ?'),
      batchEndTopic: db.prepare('SELECT no FROM subscriptions WHERE topic = ? AND no > ? AND no <= ? ORDER BY no LIMIT 1 OFFSET ?'),
      // Set-based: one statement gives the batch its seqs, one writes its inbox entries.
      bumpUsers: db.prepare(
        'UPDATE users SET latest_seq = latest_seq + 1, unread = unread + 1 WHERE no > ? AND no <= ? RETURNING id AS userId, latest_seq AS seq',
      ),
      fillUsers: db.prepare(
        'INSERT INTO inbox (user_no, seq, notification_no) SELECT no, latest_seq, ? FROM users WHERE no > ? AND no <= ?',
      ),
      bumpTopic: db.prepare(
        `UPDATE users SET latest_seq = latest_seq + 1, unread = unread + 1
         WHERE no IN (SELECT user_no FROM subscriptions WHERE topic = ? AND no > ? AND no <= ?)
         RETURNING id AS userId, latest_seq AS seq`,
      ),
      fillTopic: db.prepare(
        `INSERT INTO inbox (user_no, seq, notification_no)
         SELECT u.no, u.latest_seq, ? FROM subscriptions s JOIN users u ON u.no = s.user_no WHERE s.topic = ? AND s.no > ? AND s.no <= ?`,
      ),
      addRefs: db.prepare('UPDATE notifications SET refs = refs + ? WHERE no = ?'),
      insertJob: db.prepare('INSERT INTO fanout_jobs (notification_no, topic, after, up_to) VALUES (?, ?, ?, ?)'),
      nextJob: db.prepare('SELECT * FROM fanout_jobs ORDER BY no LIMIT 1'),
      advanceJob: db.prepare('UPDATE fanout_jobs SET after = ? WHERE no = ?'),
      endJob: db.prepare('DELETE FROM fanout_jobs WHERE no = ?'),
      probe: db.prepare(PROBE),
      expireKeys: db.prepare(
        'DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)',
      ),
      findKey: db.prepare(
        'SELECT fingerprint, id, created_at AS timestamp, recipients FROM idempotency_keys WHERE key = ? AND expires_at > ?',
      ),
      insertKey: db.prepare(
        `INSERT INTO idempotency_keys (key, fingerprint, id, created_at, recipients, expires_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint, id = excluded.id, created_at = excluded.created_at,
         recipients = excluded.recipients, expires_at = excluded.expires_at`,
      ),
      getUser: db.prepare(
        'SELECT latest_seq AS latestSeq, acked_seq AS ackedSeq, unread AS unreadCount, floor_seq AS floor FROM users WHERE id = ?',
      ),
      latestSeqs: db.prepare('SELECT id, latest_seq AS seq, unread FROM users WHERE id IN (SELECT value FROM json_each(?))'),
      after: db.prepare(`${SELECT} WHERE i.user_no = ${USER_NO} AND i.seq > ? ORDER BY i.seq LIMIT ?`),
      history: db.prepare(`${SELECT} WHERE i.user_no = ${USER_NO} AND i.seq < ? ORDER BY i.seq DESC LIMIT ?`),
      ack: db.prepare('UPDATE users SET acked_seq = max(acked_seq, min(?, latest_seq)) WHERE id = ? RETURNING acked_seq AS ackedSeq'),
      // The user's unread entries newest first, each notification's id read by its no (ids have no
      // index: it would cost every publish a page), up to as many as were asked for: most marks are of
      // recent notifications, and the scan stops once each is found.
      unreadIn: db.prepare(
        `SELECT i.seq, n.id FROM inbox i JOIN notifications n ON n.no = i.notification_no
         WHERE i.user_no = ${USER_NO} AND i.seq > ? AND i.seq <= ? AND i.read = 0 AND n.id IN (SELECT value FROM json_each(?))`,
      ),
      markSeqs: db.prepare(
        `UPDATE inbox SET read = 1 WHERE user_no = ${USER_NO} AND read = 0 AND seq IN (SELECT value FROM json_each(?)) RETURNING seq`,
      ),
      markRange: db.prepare(`UPDATE inbox SET read = 1 WHERE user_no = ${USER_NO} AND read = 0 AND seq > ? AND seq <= ?`),
      subtractUnread: db.prepare(
        'UPDATE users SET unread = max(0, unread - ?) WHERE id = ? RETURNING unread AS unreadCount, latest_seq AS seq',
      ),
      zeroUnread: db.prepare('UPDATE users SET unread = 0 WHERE id = ? RETURNING unread AS unreadCount, latest_seq AS seq'),
      subscribe: db.prepare(`INSERT INTO subscriptions (topic, user_no) VALUES (?, ${USER_NO}) ON CONFLICT DO NOTHING`),
      unsubscribe: db.prepare(`DELETE FROM subscriptions WHERE topic = ? AND user_no = ${USER_NO}`),
      topics: db.prepare(`SELECT topic FROM subscriptions WHERE user_no = ${USER_NO}`),
      // Pages holding data: the file's less its free ones (SQLite keeps max_page_count at least at the file's size).
      pagesInUse: db.prepare('SELECT page_count - freelist_count AS used FROM pragma_page_count(), pragma_freelist_count()'),
      pruneUsers: db.prepare('SELECT no, floor_seq AS floor, latest_seq AS latest FROM users WHERE no > ? ORDER BY no LIMIT ?'),
      // In seq order from the floor: stops at the first entry to keep, after reading only those that go.
      firstKept: db.prepare(
        `SELECT i.seq FROM inbox i JOIN notifications n ON n.no = i.notification_no
         WHERE i.user_no = ? AND i.seq > ? AND n.created_at >= ? ORDER BY i.seq LIMIT 1`,
      ),
      pruneInbox: db.prepare('DELETE FROM inbox WHERE user_no = ? AND seq <= ? RETURNING notification_no AS no, read'),
      raiseFloor: db.prepare(
        'UPDATE users SET floor_seq = ?, unread = max(0, unread - ?) WHERE no = ? RETURNING id AS userId, latest_seq AS seq, unread AS unreadCount',
      ),
      unref: db.prepare('UPDATE notifications SET refs = refs - ? WHERE no = ? RETURNING refs'),
      dropNotification: db.prepare(
        'DELETE FROM notifications WHERE no = ? AND refs <= 0 AND NOT EXISTS (SELECT 1 FROM fanout_jobs WHERE notification_no = ?)',
      ),
    }
    this.#publishTx = db.transaction(this.#publish)
    const ackTx = db.transaction((acks: Map<string, number>) => {
      const acked = new Map<string, number>()
      for (const [userId, seq] of acks) acked.set(userId, (this.#s.ack.get(seq, userId) as { ackedSeq: number } | undefined)?.ackedSeq ?? 0)
      return acked
    })
    this.#acks = new Batcher(
      Math.max,
      (acks) => {
        this.#onDisk()
        return ackTx.immediate(acks)
      },
      ackWindow,
    )
    const usersTx = db.transaction((users: Map<string, undefined>) => {
      const states = new Map<string, UserState>()
      for (const userId of users.keys()) this.#s.ensureUser.run(userId)
      for (const userId of users.keys()) states.set(userId, this.#s.getUser.get(userId) as UserState)
      return states
    })
    this.#newUsers = new Batcher(
      () => undefined,
      (users) => {
        this.#onDisk()
        return usersTx.immediate(users)
      },
      newUserWindow,
    )
    this.#fanOutTx = db.transaction(this.#fanOut)
    this.#markSeqsTx = db.transaction(this.#markSeqs)
    this.#markRangeTx = db.transaction((userId: string, after: number, upTo: number) => {
      const { changes } = this.#s.markRange.run(userId, after, upTo)
      this.#s.subtractUnread.run(changes, userId)
    })
    this.#markRestTx = db.transaction(this.#markRest)
    this.#subscribeTx = db.transaction(this.#subscribe)
    this.#unsubscribeTx = db.transaction((userId: string, topics: readonly string[]) => {
      for (const topic of topics) this.#s.unsubscribe.run(topic, userId)
    })
    this.#pruneTx = db.transaction(this.#prune)
    // Each publish in a savepoint of its own (a transaction called inside one): one that fails leaves the others.
    this.#groupTx = db.transaction((queued: readonly QueuedPublish[]) =>
      queued.map((q) => {
        try {
          return this.#publishTx(q.audience, q.input, q.idempotency)
        } catch (failed) {
          return { failed }
        }
      }),
    )
  }

  /** One transaction: the publish, and with a key, the key's look-up or record (see {@link Store.publish}). */
  readonly #publish = (audience: Audience, input: NotificationInput, idempotency?: IdempotencyKey): Published => {
    if (!idempotency) return this.#withinLimit(this.#publishOnce(audience, input))
    // In the publish's immediate transaction: no other writer runs between the look-up and the insert.
    const s = this.#s
    const now = Date.now()
    s.expireKeys.run(now, EXPIRED_KEYS_BATCH)
    const fingerprint = requestFingerprint(audience, input)
    const record = s.findKey.get(idempotency.key, now) as KeyRecord | undefined
    if (record) return replayOf(record, fingerprint, audience, input)
    const published = this.#publishOnce(audience, input)
    const { id, timestamp } = published.notification
    // An expired key not yet removed is replaced.
    s.insertKey.run(idempotency.key, fingerprint, id, timestamp, published.recipients, now + idempotency.ttlMs)
    return this.#withinLimit(published)
  }

  /**
   * Fails the write it ends (its transaction or savepoint is rolled back) when
   * it left more pages in use than `maxBytes` allows. `max_page_count` alone
   * does not hold them: a retention batch may grow the file into its headroom,
   * and SQLite will not set the limit back below the file's size. Publishes
   * would take those pages and the next batch would start with less, until a
   * pass could free nothing, a restart too.
   */
  #withinLimit<T>(written: T): T {
    if (this.#maxPages !== undefined && this.#pagesInUse() > this.#maxPages) throw this.#full()
    return written
  }

  #pagesInUse(): number {
    return (this.#s.pagesInUse.get() as { used: number }).used
  }

  #full(): Error {
    return new Error(`the database is full (maxBytes: ${this.#maxPages} pages in use)`)
  }

  /**
   * The notification, and every inbox entry for `userIds`; for a broadcast
   * or topic, the first batch and, when the audience is larger, a fan-out job
   * for the rest.
   */
  readonly #publishOnce = (audience: Audience, input: NotificationInput): Published => {
    const s = this.#s
    const notification = storedNotification(input, audience)
    const userIds = 'userIds' in audience ? [...new Set(audience.userIds)] : undefined
    const topic = 'topic' in audience ? audience.topic : null
    const { upTo, size } = (
      userIds ? { upTo: 0, size: userIds.length } : topic === null ? s.lastUser.get() : s.lastSubscription.get(topic)
    ) as { upTo: number; size: number }
    // No one to give it to (a topic no one follows): nothing to store, which retention would never remove.
    if (size === 0) return { notification, deliveries: [], recipients: 0, pending: false }
    const { no } = s.insertNotification.get({
      ...notification,
      data: input.data === undefined ? null : JSON.stringify(input.data),
      topic: notification.topic ?? null,
      refs: userIds?.length ?? 0, // a broadcast's or topic's batches count theirs
    }) as { no: number }
    if (userIds) {
      const deliveries = userIds.map((userId) => {
        const row = s.bumpUser.get(userId) as { no: number; seq: number }
        s.insertInbox.run(row.no, row.seq, no)
        return { userId, seq: row.seq }
      })
      return { notification, deliveries, recipients: deliveries.length, pending: false }
    }
    const job: Job = { no: 0, notification_no: no, topic, after: 0, up_to: upTo }
    const { deliveries, done } = this.#batchOf(job)
    if (!done) s.insertJob.run(no, topic, job.after, upTo)
    return { notification, deliveries, recipients: size, pending: !done }
  }

  /** Makes the next batch of `job`'s audience and moves `job.after` past it. */
  #batchOf(job: Job): { deliveries: Delivery[]; done: boolean } {
    const s = this.#s
    const { notification_no: no, topic, after, up_to: upTo } = job
    const end = (
      (topic === null ? s.batchEndUsers.get(after, upTo, this.#batch - 1) : s.batchEndTopic.get(topic, after, upTo, this.#batch - 1)) as
        | { no: number }
        | undefined
    )?.no
    const last = end ?? upTo
    let deliveries: Delivery[]
    let entries: number
    if (topic === null) {
      deliveries = s.bumpUsers.all(after, last) as Delivery[]
      entries = s.fillUsers.run(no, after, last).changes
    } else {
      deliveries = s.bumpTopic.all(topic, after, last) as Delivery[]
      entries = s.fillTopic.run(no, topic, after, last).changes
    }
    if (entries > 0) s.addRefs.run(entries, no)
    job.after = last
    return { deliveries, done: last >= upTo }
  }

  /**
   * Commits at once, except a publish that may be gathered (an API call's):
   * those of one turn of the event loop commit together at its end, in one
   * transaction (the publishes of concurrent requests arrive in one turn). A
   * commit, its locks and its WAL writes are most of a publish's cost; the
   * turn ends before the loop waits for I/O again, so a lone publish waits
   * only for the rest of the turn's work. Each resolves only once committed.
   */
  async publish(audience: Audience, input: NotificationInput, idempotency?: IdempotencyKey, options?: PublishOptions): Promise<Published> {
    if (options?.gather) {
      return new Promise((resolve, reject) => {
        if (this.#queued.length === 0) setImmediate(this.#endTurn)
        this.#queued.push({ audience, input, idempotency, resolve, reject })
      })
    }
    this.#onDisk()
    return this.#publishTx.immediate(audience, input, idempotency)
  }

  /** A read: refused with the reason once the file was found gone (the connection is closed). */
  #open(): void {
    if (this.#gone) throw this.#gone
  }

  /**
   * Throws unless the database file is still the one opened. Removed (its
   * directory cleaned up) or replaced, SQLite goes on writing to the file it
   * holds open, which no one will open again: a publish committed there is
   * not durable. One stat a write. Found so, the connection is closed at once
   * and for good: a file replaced alone (a backup renamed over it) leaves its
   * WAL and shared-memory index to the process that opens the new one (a
   * rolling deploy's successor), and this one's next write or checkpoint would
   * put its pages in that log, or fold the successor's commits into the file
   * no one opens (they would never reach the new one).
   */
  #onDisk(): void {
    this.#open()
    if (!this.#file) return
    const now = statSync(this.#file.path, { throwIfNoEntry: false })
    if (now?.ino !== this.#file.ino || now.dev !== this.#file.dev) {
      this.#gone = new Error(`the database file "${this.#file.path}" was ${now ? 'replaced' : 'removed'} under the running server`)
      clearInterval(this.#checkpoint)
      this.#db.close()
      throw this.#gone
    }
  }

  readonly #endTurn = (): void => {
    const queued = this.#queued
    if (queued.length === 0) return
    this.#queued = []
    try {
      this.#onDisk()
    } catch (error) {
      for (const q of queued) q.reject(error)
      return
    }
    if (queued.length === 1) {
      // Alone: its own transaction, without the savepoint that keeps one failure from the others.
      const q = queued[0]!
      try {
        q.resolve(this.#publishTx.immediate(q.audience, q.input, q.idempotency))
      } catch (error) {
        q.reject(error)
      }
      return
    }
    let outcomes: (Published | { failed: unknown })[]
    try {
      outcomes = this.#groupTx.immediate(queued)
    } catch (error) {
      for (const q of queued) q.reject(error)
      return
    }
    for (const [i, q] of queued.entries()) {
      const outcome = outcomes[i]!
      if ('failed' in outcome) q.reject(outcome.failed)
      else q.resolve(outcome)
    }
  }

  readonly #fanOut = (): FanOutBatch | undefined => {
    const s = this.#s
    const job = s.nextJob.get() as Job | undefined
    if (!job) return undefined
    const { deliveries, done } = this.#withinLimit(this.#batchOf(job))
    if (done) s.endJob.run(job.no)
    else s.advanceJob.run(job.after, job.no)
    const notification = toStored(s.notification.get(job.notification_no) as NotificationRow)
    // A job whose audience left before it reached them leaves a notification no inbox holds: it goes.
    if (done) s.dropNotification.run(job.notification_no, job.notification_no)
    return { notification, deliveries, done }
  }

  async fanOut(): Promise<FanOutBatch | undefined> {
    this.#onDisk()
    return this.#fanOutTx.immediate()
  }

  async latestSeqs(userIds: readonly string[]): Promise<Map<string, { seq: number; unreadCount: number }>> {
    this.#open()
    const rows = this.#s.latestSeqs.all(JSON.stringify(userIds)) as { id: string; seq: number; unread: number }[]
    return new Map(rows.map((r) => [r.id, { seq: r.seq, unreadCount: r.unread }]))
  }

  touchUser(userId: string): Promise<UserState> {
    if (this.#gone) return Promise.reject(this.#gone)
    // A read for a user the store knows (nearly every connect); the insert, a write, only for a new one.
    let known: UserState | undefined
    try {
      known = this.#s.getUser.get(userId) as UserState | undefined
    } catch (error) {
      // Closed, say: rejected, as every other method's failure (not async, to spare a connect a promise).
      return Promise.reject(error)
    }
    return known ? Promise.resolve(withUnwrittenAck(known, this.#acks.unwritten(userId))) : this.#newUsers.add(userId, undefined)
  }

  async user(userId: string): Promise<UserState | undefined> {
    this.#open()
    const known = this.#s.getUser.get(userId) as UserState | undefined
    return known && withUnwrittenAck(known, this.#acks.unwritten(userId))
  }

  async after(userId: string, after: number, limit: number): Promise<Notification[]> {
    this.#open()
    return (this.#s.after.all(userId, after, limit) as Row[]).map(toNotification)
  }

  async history(userId: string, before: number | undefined, limit: number): Promise<Notification[]> {
    this.#open()
    return (this.#s.history.all(userId, before ?? Number.MAX_SAFE_INTEGER, limit) as Row[]).map(toNotification)
  }

  /** Acks made within {@link ACK_WINDOW_MS} are written together, in one transaction (a commit each would cost more than the update). */
  ack(userId: string, seq: number): Promise<number> {
    return this.#acks.add(userId, seq)
  }

  /**
   * By ids: the user's unread entries holding them are looked for newest
   * first, {@link MARK_SCAN_SEQS} seqs at a time, and those found marked in
   * one transaction (each only if still unread). All: the entries are marked
   * oldest first in transactions of {@link MARK_SCAN_SEQS} seqs, the last of
   * which reaches `upTo`, or the latest seq then if that is lower, and says
   * it. Between the parts the server does its other work.
   */
  async markRead(userId: string, ids: readonly string[] | 'all', upTo = Number.POSITIVE_INFINITY): Promise<ReadChange> {
    // Once close() has begun (it waits for the marks in parts already under way) no other starts.
    if (this.#closing) throw new Error('the store is closing')
    const marking = this.#mark(userId, ids, upTo)
    this.#marks.add(marking)
    try {
      return await marking
    } finally {
      this.#marks.delete(marking)
    }
  }

  async #mark(userId: string, ids: readonly string[] | 'all', upTo: number): Promise<ReadChange> {
    this.#onDisk()
    const user = this.#s.getUser.get(userId) as UserState | undefined
    if (!user)
      return ids === 'all' ? { ids: [], all: true, seq: 0, unreadCount: 0, upTo: 0 } : { ids: [], all: false, seq: 0, unreadCount: 0 }
    if (ids === 'all') {
      let after = user.floor
      for (; Math.min(upTo, user.latestSeq) - after > MARK_SCAN_SEQS; after += MARK_SCAN_SEQS) {
        this.#markRangeTx.immediate(userId, after, after + MARK_SCAN_SEQS)
        await nextTurn()
        this.#onDisk()
      }
      return this.#markRestTx.immediate(userId, after, upTo)
    }
    const wanted = new Set(ids)
    const list = JSON.stringify([...wanted])
    const found = new Map<number, string>()
    for (let top = user.latestSeq; top > user.floor && found.size < wanted.size; top -= MARK_SCAN_SEQS) {
      if (top < user.latestSeq) await nextTurn()
      for (const r of this.#s.unreadIn.all(userId, top - MARK_SCAN_SEQS, top, list) as { seq: number; id: string }[]) found.set(r.seq, r.id)
    }
    return this.#markSeqsTx.immediate(userId, found)
  }

  readonly #markSeqs = (userId: string, found: ReadonlyMap<number, string>): ReadChange => {
    const s = this.#s
    const marked = found.size === 0 ? [] : (s.markSeqs.all(userId, JSON.stringify([...found.keys()])) as { seq: number }[])
    const changed = marked.map((r) => r.seq).sort((a, b) => a - b)
    const row = s.subtractUnread.get(changed.length, userId) as { unreadCount: number; seq: number }
    return { ids: changed.map((seq) => found.get(seq)!), all: false, seq: row.seq, unreadCount: row.unreadCount }
  }

  /**
   * The last part of a mark all: every entry after `after` up to `upTo`, or to the latest seq now if that
   * is lower; then none is unread, or (bounded below the latest) those above the bound.
   */
  readonly #markRest = (userId: string, after: number, upTo: number): ReadChange => {
    const s = this.#s
    const { latestSeq } = s.getUser.get(userId) as UserState
    const end = Math.min(upTo, latestSeq)
    const { changes } = s.markRange.run(userId, after, end)
    const row = (end === latestSeq ? s.zeroUnread.get(userId) : s.subtractUnread.get(changes, userId)) as { unreadCount: number }
    return { ids: [], all: true, seq: latestSeq, unreadCount: row.unreadCount, upTo: end }
  }

  async subscribe(userId: string, topics: readonly string[], max: number): Promise<string[]> {
    this.#onDisk()
    return this.#subscribeTx.immediate(userId, topics, max)
  }

  readonly #subscribe = (userId: string, topics: readonly string[], max: number): string[] => {
    const s = this.#s
    s.ensureUser.run(userId)
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
    this.#onDisk()
    this.#unsubscribeTx.immediate(userId, topics)
  }

  async topics(userId: string): Promise<string[]> {
    this.#open()
    return (this.#s.topics.all(userId) as { topic: string }[]).map((r) => r.topic)
  }

  async prune(rule: RetentionRule, after: number): Promise<PruneBatch> {
    this.#onDisk()
    if (this.#maxPages === undefined) return this.#pruneTx.immediate(rule, after)
    // Room to free room: a store at its limit is what retention is for. Set back at once (to the
    // pages in use, if the batch took some of the headroom: SQLite keeps it at least that).
    this.#db.pragma(`max_page_count = ${this.#maxPages + PRUNE_HEADROOM_PAGES}`)
    try {
      return this.#pruneTx.immediate(rule, after)
    } finally {
      this.#db.pragma(`max_page_count = ${this.#maxPages}`)
    }
  }

  /**
   * One immediate transaction over the next {@link PRUNE_USERS} users, which
   * removes at most `pruneBatch` entries: publishes wait for it, so it is
   * kept short.
   */
  readonly #prune = (rule: RetentionRule, after: number): PruneBatch => {
    const s = this.#s
    const changes: UnreadChange[] = []
    const batch: PruneBatch = { removed: 0, unread: 0, users: 0, notifications: 0, next: undefined, unreadChanges: changes }
    const users = s.pruneUsers.all(after, PRUNE_USERS) as { no: number; floor: number; latest: number }[]
    // A full page may have users after it; a short one was the last.
    if (users.length === PRUNE_USERS) batch.next = users.at(-1)!.no
    const unrefs = new Map<number, number>()
    let budget = this.#pruneBatch
    for (const u of users) {
      const upTo = pruneCut(u, rule, (from) => (s.firstKept.get(u.no, from, rule.before) as { seq: number } | undefined)?.seq)
      if (upTo <= u.floor) continue
      // Out of budget: this user (or the rest of its entries) starts the next batch.
      if (budget === 0) {
        batch.next = u.no - 1
        break
      }
      const cut = Math.min(upTo, u.floor + budget)
      const gone = s.pruneInbox.all(u.no, cut) as { no: number; read: number }[]
      let unread = 0
      for (const g of gone) {
        if (g.read === 0) unread++
        unrefs.set(g.no, (unrefs.get(g.no) ?? 0) + 1)
      }
      const user = s.raiseFloor.get(cut, unread, u.no) as UnreadChange
      if (unread > 0) changes.push(user)
      budget -= gone.length
      batch.removed += gone.length
      batch.unread += unread
      if (cut < upTo) {
        batch.next = u.no - 1
        break
      }
      batch.users++
    }
    for (const [no, n] of unrefs) {
      const { refs } = s.unref.get(n, no) as { refs: number }
      if (refs <= 0) batch.notifications += s.dropNotification.run(no, no).changes
    }
    return batch
  }

  /**
   * A write probe; with `maxBytes`, room to grow as well; and no failure of
   * the store's own background work since its last success.
   */
  async check(): Promise<void> {
    if (this.#background) throw this.#background
    this.#onDisk()
    this.#s.probe.run(new Date().toISOString())
    if (this.#maxPages !== undefined && this.#pagesInUse() > this.#maxPages - FULL_HEADROOM_PAGES) throw this.#full()
  }

  /**
   * Folds the WAL back into the database. Runs on a timer: a failure (a full disk) is kept for check(), never thrown.
   * SQLite starts the WAL over (and cuts it to `walSizeLimit`) at the first write after a checkpoint that folded all
   * of it. Alone, this process's next write does. With another process on the file (a rolling deploy's overlap)
   * writing during every checkpoint, that never comes, and the WAL grew with every commit of both: past
   * `walSizeLimit`, a RESTART checkpoint waits a moment for the other's write and starts it over.
   */
  #fold(mode: 'PASSIVE' | 'TRUNCATE'): void {
    const db = this.#db
    try {
      this.#onDisk()
      const [done] = db.pragma(`wal_checkpoint(${mode})`) as { log: number }[]
      if (mode === 'PASSIVE' && done && done.log > this.#walFrames) {
        db.pragma(`busy_timeout = ${RESTART_WAIT_MS}`)
        try {
          db.pragma('wal_checkpoint(RESTART)')
        } finally {
          db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
        }
      }
      this.#background = undefined
    } catch (error) {
      this.#background = new Error(`WAL checkpoint failed: ${(error as Error).message}`)
    }
  }

  async close(): Promise<void> {
    // A mark in parts finishes first: a mark of all half done would leave part of the inbox read.
    this.#closing = true
    if (this.#marks.size > 0) await Promise.allSettled(this.#marks)
    clearInterval(this.#checkpoint)
    if (!this.#db.open) return
    // Their writes run before flush() first waits: done before the database closes.
    void this.#acks.flush()
    void this.#newUsers.flush()
    this.#endTurn()
    this.#fold('TRUNCATE')
    this.#db.close()
  }
}

function toStored(row: NotificationRow): StoredNotification {
  const n: StoredNotification = { id: row.id, title: row.title, body: row.body, priority: row.priority, timestamp: row.created_at }
  if (row.data !== null) n.data = JSON.parse(row.data) as JsonObject
  if (row.topic !== null) n.topic = row.topic
  return n
}
