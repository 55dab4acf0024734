import pg from 'pg'
import type { JsonObject, Notification, Priority } from '../../protocol/index.js'
import { MAX_TIMER_MS } from '../options.js'
import { redact } from '../redact.js'
import { ACK_WINDOW_MS, ackWindow, Batcher } from './batch.js'
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
  pruneCut,
  type ReadChange,
  type RetentionRule,
  replayOf,
  requestFingerprint,
  type Store,
  type StoredNotification,
  storedNotification,
  type UserState,
  withUnwrittenAck,
} from './store.js'

/** Options of {@link PostgresStore.open}. */
export interface PostgresStoreOptions {
  /** The schema belfry's tables live in (created if missing): several belfry deployments, or tests, can share a database. @default 'belfry' */
  schema?: string | undefined
  /** Most inbox entries one transaction makes: a larger broadcast or topic publish continues as a fan-out job. @default 1000 */
  fanOutBatch?: number | undefined
  /** Most inbox entries one retention batch removes, in one transaction that holds its users' rows. @default 1000 */
  pruneBatch?: number | undefined
  /** Connections in the pool. @default 10 */
  poolSize?: number | undefined
  /** How long to wait for a connection, in ms: past it a query fails (and a publish answers 503). @default 5000 */
  connectTimeoutMs?: number | undefined
  /**
   * How long one statement may run or wait for a lock, in ms: PostgreSQL
   * cancels it past that (and a publish answers 503 rather than hang). A reply
   * that never comes (a connection gone silent) fails 2 s later. A
   * transaction idle for 1 s longer than this (its process gone mid-way)
   * is ended by PostgreSQL, which frees the rows it held. Migrations are not
   * bounded. @default 10000
   */
  queryTimeoutMs?: number | undefined
}

/** The message pg rejects a query with when its reply did not come within `query_timeout`. */
const READ_TIMEOUT = 'Query read timeout'
/** The statement's time as `Date.toISOString()` writes it (UTC, milliseconds): a notification's `timestamp`. */
const STAMP = `to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`
/** A migration may take long on a large database; the processes starting meanwhile wait for it. */
const MIGRATION_TIMEOUT_MS = 3_600_000
/** The longest `queryTimeoutMs`: the client's own timer waits 2 s longer, and PostgreSQL's settings made of it are 32-bit ms too. */
const MAX_QUERY_TIMEOUT_MS = MAX_TIMER_MS - 2000

/**
 * Versioned migrations: each runs once, in order, in one transaction that
 * holds an advisory lock, so processes starting at once apply each exactly
 * once. `$s` is the schema.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE $s.users (
     no          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     id          text NOT NULL UNIQUE,
     latest_seq  bigint NOT NULL DEFAULT 0,
     acked_seq   bigint NOT NULL DEFAULT 0,
     unread      bigint NOT NULL DEFAULT 0
   );
   CREATE TABLE $s.notifications (
     no          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     id          text NOT NULL UNIQUE,
     title       text NOT NULL,
     body        text NOT NULL,
     priority    text NOT NULL,
     created_at  text NOT NULL,
     data        text,
     topic       text
   );
   CREATE TABLE $s.inbox (
     user_no          bigint NOT NULL,
     seq              bigint NOT NULL,
     notification_no  bigint NOT NULL,
     read             boolean NOT NULL DEFAULT false,
     PRIMARY KEY (user_no, seq)
   );
   CREATE TABLE $s.subscriptions (
     no       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     topic    text NOT NULL,
     user_no  bigint NOT NULL,
     UNIQUE (topic, user_no)
   );
   CREATE INDEX subscriptions_by_topic ON $s.subscriptions (topic, no);
   CREATE INDEX subscriptions_by_user ON $s.subscriptions (user_no);
   CREATE TABLE $s.fanout_jobs (
     no               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     notification_no  bigint NOT NULL,
     topic            text,
     after            bigint NOT NULL,
     up_to            bigint NOT NULL
   );
   CREATE TABLE $s.probe (
     id          int PRIMARY KEY CHECK (id = 1),
     checked_at  timestamptz NOT NULL
   );`,
  // Retention: each user's floor (the highest seq pruned), each notification's inbox entries (deleted with the last).
  `ALTER TABLE $s.users ADD COLUMN floor_seq bigint NOT NULL DEFAULT 0;
   ALTER TABLE $s.notifications ADD COLUMN refs bigint NOT NULL DEFAULT 0;
   UPDATE $s.notifications n SET refs = c.n
     FROM (SELECT notification_no, count(*) AS n FROM $s.inbox GROUP BY notification_no) c
     WHERE c.notification_no = n.no;`,
  // Publishers' idempotency keys: the request's fingerprint, the answer, and when the key expires (ms since the epoch).
  `CREATE TABLE $s.idempotency_keys (
     key          text PRIMARY KEY,
     fingerprint  text NOT NULL,
     id           text NOT NULL,
     created_at   text NOT NULL,
     recipients   bigint NOT NULL,
     expires_at   bigint NOT NULL
   );
   CREATE INDEX idempotency_keys_by_expiry ON $s.idempotency_keys (expires_at);`,
  // The deployment's identity (Store.deployment), made once: the events of another deployment on the same
  // broker channel are told apart by it. Random, not derived from the URL: one database is reached by many names.
  `CREATE TABLE $s.deployment (
     id     int PRIMARY KEY CHECK (id = 1),
     token  text NOT NULL DEFAULT gen_random_uuid()::text
   );
   INSERT INTO $s.deployment (id) VALUES (1);`,
]

/** A key a publish records in its own transaction. */
interface KeyRow {
  key: string
  fingerprint: string
  expiresAt: number
}

/** Users one retention batch looks at. */
const PRUNE_USERS = 500
/** Due users whose cut one query of a prune's plan reads: a few, as a batch's budget is often spent on the first. */
const PRUNE_PLAN_USERS = 16

/** Errors a transaction may meet through no fault of its own, and succeed on a retry: serialization failure, deadlock. */
const RETRYABLE = new Set(['40001', '40P01'])
const RETRIES = 5

/** bigint columns come back as numbers (seqs stay far below 2^53). */
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 ? Number : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
}

interface Row {
  id: string
  seq: number
  title: string
  body: string
  priority: Priority
  created_at: string
  data: string | null
  topic: string | null
  read: boolean
}

interface Job {
  no: number
  notification_no: number
  topic: string | null
  after: number
  up_to: number
}

/**
 * The inbox on PostgreSQL, shared by several server processes.
 *
 * Each user's `seq` is allocated from the user's own counter row, locked in
 * the transaction that writes the inbox entry: a reader paging `seq > cursor`
 * never skips one that commits later. Rows are locked in one order (users'
 * `no`), and a transaction that meets a deadlock or a serialization failure
 * is retried. A broadcast or topic publish larger than one batch writes its
 * first batch and a fan-out job; any process finishes the job, one batch per
 * transaction (`FOR UPDATE SKIP LOCKED`), so a `kill -9` mid-way costs
 * nothing and gives nobody a second entry.
 */
export class PostgresStore implements Store {
  readonly #pool: pg.Pool
  readonly #s: string
  readonly #batch: number
  readonly #pruneBatch: number
  readonly #acks = new Batcher<number, number>(Math.max, (acks) => this.#writeAcks(acks), ackWindow)
  /** The first close(): a second one waits for it (its acks written, the pool ended). */
  #closed: Promise<void> | undefined
  /** Read once at open: it never changes. */
  #deployment = ''

  private constructor(pool: pg.Pool, schema: string, batch: number, pruneBatch: number) {
    this.#pool = pool
    this.#s = schema
    this.#batch = batch
    this.#pruneBatch = pruneBatch
  }

  /**
   * Connects, creates or migrates the schema, and checks that the store
   * takes writes. Rejects with a one-line Error when the database cannot be
   * reached or used.
   */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const {
      schema = 'belfry',
      fanOutBatch = 1000,
      pruneBatch = 1000,
      poolSize = 10,
      connectTimeoutMs = 5000,
      queryTimeoutMs = 10_000,
    } = options
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema))
      throw new TypeError(`PostgresStore: options.schema must be a lower-case SQL identifier, got "${schema}"`)
    if (!(Number.isSafeInteger(fanOutBatch) && fanOutBatch >= 1)) {
      throw new TypeError(`PostgresStore: options.fanOutBatch must be a whole number ≥ 1, got ${fanOutBatch}`)
    }
    if (!(Number.isSafeInteger(pruneBatch) && pruneBatch >= 1)) {
      throw new TypeError(`PostgresStore: options.pruneBatch must be a whole number ≥ 1, got ${pruneBatch}`)
    }
    if (!(Number.isSafeInteger(poolSize) && poolSize >= 1)) {
      throw new TypeError(`PostgresStore: options.poolSize must be a whole number ≥ 1, got ${poolSize}`)
    }
    // Each is a timer's delay (setTimeout takes a longer one as 1 ms), the query timeout with the 2 s added to it.
    if (!(Number.isSafeInteger(connectTimeoutMs) && connectTimeoutMs >= 1 && connectTimeoutMs <= MAX_TIMER_MS)) {
      throw new TypeError(
        `PostgresStore: options.connectTimeoutMs must be a whole number of ms from 1 to ${MAX_TIMER_MS}, got ${connectTimeoutMs}`,
      )
    }
    if (!(Number.isSafeInteger(queryTimeoutMs) && queryTimeoutMs >= 1 && queryTimeoutMs <= MAX_QUERY_TIMEOUT_MS)) {
      throw new TypeError(
        `PostgresStore: options.queryTimeoutMs must be a whole number of ms from 1 to ${MAX_QUERY_TIMEOUT_MS}, got ${queryTimeoutMs}`,
      )
    }
    const pool = new pg.Pool({
      connectionString: url,
      max: poolSize,
      connectionTimeoutMillis: connectTimeoutMs,
      statement_timeout: queryTimeoutMs,
      query_timeout: queryTimeoutMs + 2000,
      // A transaction left open by a process that vanished (no FIN, no RST reaches PostgreSQL) would hold its
      // users' rows for hours: PostgreSQL ends it once idle that long (a live one sends its next statement in ms).
      idle_in_transaction_session_timeout: queryTimeoutMs + 1000,
      // TCP keepalives from 10 s idle on: a pooled connection whose PostgreSQL's machine vanished is found dead.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      types: TYPES,
    })
    // An idle connection the server closed (a restart) must not crash the process: the next query reconnects.
    pool.on('error', () => {})
    const store = new PostgresStore(pool, schema, fanOutBatch, pruneBatch)
    try {
      store.#deployment = await store.#migrate()
      await store.check()
    } catch (error) {
      await pool.end().catch(() => {})
      throw new Error(`cannot use PostgreSQL at ${redact(url)}: ${(error as Error).message}`)
    }
    return store
  }

  /**
   * This deployment's token, kept in the schema: every process that opens it has the same (see
   * {@link Store.deployment}). A copy of the database (a dump restored for staging) carries it too: one
   * that shares a Redis channel with the original needs its own, `UPDATE <schema>.deployment SET token =
   * gen_random_uuid()::text` before its processes start.
   */
  get deployment(): string {
    return this.#deployment
  }

  /** `$s.` in a statement is this store's schema. */
  #sql(text: string): string {
    return text.replaceAll('$s.', `${this.#s}.`)
  }

  /** Brings the schema to this belfry's version; resolves with the deployment's token. */
  async #migrate(): Promise<string> {
    return this.#tx(async (q) => {
      await q('SET LOCAL statement_timeout = 0')
      // One process at a time: the others wait here, then find the work done.
      await q(`SELECT pg_advisory_xact_lock(hashtext('belfry migrations ' || '${this.#s}'))`)
      await q(`CREATE SCHEMA IF NOT EXISTS ${this.#s}`)
      await q('CREATE TABLE IF NOT EXISTS $s.migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())')
      const { rows } = await q('SELECT coalesce(max(version), 0) AS version FROM $s.migrations')
      const version = rows[0].version as number
      if (version > MIGRATIONS.length) throw new Error(`its schema is version ${version}, newer than this belfry's (${MIGRATIONS.length})`)
      for (let v = version; v < MIGRATIONS.length; v++) {
        await q(MIGRATIONS[v]!)
        await q('INSERT INTO $s.migrations (version) VALUES ($1)', [v + 1])
      }
      return (await q('SELECT token FROM $s.deployment')).rows[0].token as string
    }, MIGRATION_TIMEOUT_MS)
  }

  /**
   * Runs `work` in a transaction, again when it meets a deadlock or a
   * serialization failure. `timeoutMs` replaces the pool's reply timeout.
   */
  async #tx<T>(work: (q: (text: string, values?: unknown[]) => Promise<pg.QueryResult>) => Promise<T>, timeoutMs?: number): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.#pool.connect()
      let broken = false
      // A checked-out client has no 'error' listener of the pool's: when PostgreSQL ends the connection
      // (a shutdown, a restart, pg_terminate_backend) the client emits 'error' — after failing the query in
      // flight, or between two queries — and unheard, that would take the process down. The transaction
      // fails through its query; the client is dropped.
      const onError = () => {
        broken = true
      }
      client.on('error', onError)
      try {
        const q = (text: string, values?: unknown[]) =>
          client.query({ text: this.#sql(text), values, query_timeout: timeoutMs } as pg.QueryConfig)
        await client.query('BEGIN')
        const result = await work(q)
        await client.query('COMMIT')
        return result
      } catch (error) {
        // A reply that never came leaves the connection in an unknown state: it is dropped, not reused.
        if ((error as Error).message === READ_TIMEOUT) broken = true
        else
          await client.query('ROLLBACK').catch(() => {
            broken = true
          })
        const code = (error as { code?: string }).code
        if (attempt < RETRIES && code !== undefined && RETRYABLE.has(code)) {
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * attempt))
          continue
        }
        throw error
      } finally {
        client.off('error', onError) // the pool listens again once it is released
        client.release(broken)
      }
    }
  }

  /** One statement. `name`: a hot one, which each pooled connection then parses and plans once, not at every call. */
  async #query(text: string, values: unknown[] = [], name?: string): Promise<pg.QueryResult> {
    return name
      ? this.#pool.query({ name: `${name}_${this.#s}`, text: this.#sql(text), values })
      : this.#pool.query(this.#sql(text), values)
  }

  /** Runs one statement (its own transaction), again when it meets a deadlock or a serialization failure. */
  async #retrying(text: string, values: unknown[], name?: string): Promise<pg.QueryResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        // Named: each pooled connection parses and plans it once, not at every publish.
        return await this.#query(text, values, name)
      } catch (error) {
        const code = (error as { code?: string }).code
        if (!(attempt < RETRIES && code !== undefined && RETRYABLE.has(code))) throw error
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * attempt))
      }
    }
  }

  /**
   * With a key: expired keys go (a bounded batch, and this key if it is one)
   * and the key is looked up; a new one is recorded by the publish's own
   * statement or transaction. Of two publishes with one key at once, the
   * second's insert waits for the first's transaction on the key's unique
   * index, then fails (23505): it reads the key again and answers as the
   * first did. The unique index is what makes one key one notification: the
   * clean-up only ever removes expired keys, and may leave one for later.
   */
  async publish(audience: Audience, input: NotificationInput, idempotency?: IdempotencyKey): Promise<Published> {
    if (!idempotency) return this.#publishOnce(audience, input, undefined)
    const fingerprint = requestFingerprint(audience, input)
    for (let attempt = 1; ; attempt++) {
      const now = Date.now()
      const { rows } = await this.#retrying(
        // The batch as an array (an InitPlan, read once by the expiry index): `key IN (subquery) OR …` would filter
        // a sequential scan of every live key with it, on every keyed publish. This key is taken as the batch is,
        // skipped when another holds it: the statement waits for no row, so it is in no deadlock. (It waited for
        // this key while holding its batch: a clean-up holding this key and waiting for one of the batch's made a
        // cycle, and PostgreSQL failed the publish.) A key skipped is its holder's to delete: the insert below waits
        // for that delete, or meets the key still there (23505) and tries again. Retried all the same: it is one
        // statement, its own transaction.
        `WITH expired AS (DELETE FROM $s.idempotency_keys
                          WHERE key = ANY (ARRAY(SELECT key FROM $s.idempotency_keys WHERE expires_at <= $2
                                                 ORDER BY expires_at LIMIT $3 FOR UPDATE SKIP LOCKED)
                                           || ARRAY(SELECT key FROM $s.idempotency_keys WHERE key = $1 AND expires_at <= $2
                                                    FOR UPDATE SKIP LOCKED))
                            AND expires_at <= $2)
         SELECT fingerprint, id, created_at AS timestamp, recipients FROM $s.idempotency_keys WHERE key = $1 AND expires_at > $2`,
        [idempotency.key, now, EXPIRED_KEYS_BATCH],
      )
      if (rows[0]) return replayOf(rows[0] as KeyRecord, fingerprint, audience, input)
      try {
        return await this.#publishOnce(audience, input, { key: idempotency.key, fingerprint, expiresAt: now + idempotency.ttlMs })
      } catch (error) {
        const { code, constraint } = error as { code?: string; constraint?: string }
        // Twice: the key the insert met may have been this one expired, skipped above and not yet deleted by the
        // clean-up holding it; the next attempt finds it gone, and its insert may meet the key another publish
        // with the same key records meanwhile.
        if (attempt <= 2 && code === '23505' && constraint === 'idempotency_keys_pkey') continue
        throw error
      }
    }
  }

  async #publishOnce(audience: Audience, input: NotificationInput, key: KeyRow | undefined): Promise<Published> {
    const notification = storedNotification(input, audience)
    const row = [
      notification.id,
      notification.title,
      notification.body,
      notification.priority,
      input.data === undefined ? null : JSON.stringify(input.data),
      notification.topic ?? null,
    ]
    if ('userIds' in audience) {
      // One round trip when every user is known (nearly always): one statement, atomic on its own,
      // for the notification, each user's next seq (the users' rows locked in `no` order, as in every
      // transaction: no deadlock) and the entries. It writes nothing unless it found every user; then
      // the users are recorded (a row a user keeps, so outside the publish) and it runs again.
      const ids = [...new Set(audience.userIds)].sort()
      // No one to give it to: nothing to store (the statement would store a notification no inbox holds).
      if (ids.length === 0) {
        if (key) {
          await this.#query(
            'INSERT INTO $s.idempotency_keys (key, fingerprint, id, created_at, recipients, expires_at) VALUES ($1, $2, $3, $4, 0, $5)',
            [key.key, key.fingerprint, notification.id, notification.timestamp, key.expiresAt],
          )
        }
        return { notification, deliveries: [], recipients: 0, pending: false }
      }
      for (let pass = 1; ; pass++) {
        const { rows } = await this.#retrying(
          `WITH locked AS (SELECT no FROM $s.users WHERE id = ANY($8) ORDER BY no FOR UPDATE),
                n AS (INSERT INTO $s.notifications (id, title, body, priority, created_at, data, topic, refs)
                      SELECT $1, $2, $3, $4, ${STAMP}, $5, $6, $7 WHERE (SELECT count(*) FROM locked) = $7 RETURNING no, created_at),
                bumped AS (UPDATE $s.users u SET latest_seq = u.latest_seq + 1, unread = u.unread + 1
                           FROM locked, n WHERE u.no = locked.no RETURNING u.no, u.id, u.latest_seq),
                entries AS (INSERT INTO $s.inbox (user_no, seq, notification_no) SELECT bumped.no, bumped.latest_seq, n.no FROM bumped, n),
                keyed AS (INSERT INTO $s.idempotency_keys (key, fingerprint, id, created_at, recipients, expires_at)
                          SELECT $9::text, $10::text, $1, n.created_at, $7, $11::bigint FROM n WHERE $9::text IS NOT NULL)
           SELECT id AS "userId", latest_seq AS seq, (SELECT created_at FROM n) AS "storedAt" FROM bumped`,
          // The time is the database's, once the users' rows are locked: a publish that waited for them (or ran twice,
          // for new users) is stamped after the ones committed before it, as seq orders them.
          [...row, ids.length, ids, key?.key ?? null, key?.fingerprint ?? null, key?.expiresAt ?? null],
          'belfry_publish',
        )
        if (rows.length > 0) {
          notification.timestamp = (rows[0] as { storedAt: string }).storedAt
          return {
            notification,
            deliveries: rows.map(({ userId, seq }) => ({ userId, seq })) as Delivery[],
            recipients: rows.length,
            pending: false,
          }
        }
        if (pass > 1) throw new Error('publish: a recipient is missing from the users table after it was recorded')
        await this.#retrying('INSERT INTO $s.users (id) SELECT x FROM unnest($1::text[]) AS t(x) ON CONFLICT (id) DO NOTHING', [ids])
      }
    }
    return this.#tx(async (q) => {
      const topic = 'topic' in audience ? audience.topic : null
      const audienceRows = await q(
        topic === null
          ? 'SELECT coalesce(max(no), 0) AS up_to, count(*) AS size FROM $s.users'
          : 'SELECT coalesce(max(no), 0) AS up_to, count(*) AS size FROM $s.subscriptions WHERE topic = $1',
        topic === null ? [] : [topic],
      )
      const { up_to: upTo, size } = audienceRows.rows[0] as { up_to: number; size: number }
      // The key goes in last, after the users' rows are locked, as in a publish to users: the same key used by
      // both at once (two requests, one key) then waits, where the two orders would deadlock. A key taken
      // meanwhile fails the insert, and the whole publish is tried again (#publish), finding it.
      const keyed = async (recipients: number) => {
        if (!key) return
        await q(
          `INSERT INTO $s.idempotency_keys (key, fingerprint, id, created_at, recipients, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
          [key.key, key.fingerprint, notification.id, notification.timestamp, recipients, key.expiresAt],
        )
      }
      // No one to give it to (a topic no one follows): nothing to store, which retention would never remove.
      if (size === 0) {
        await keyed(0)
        return { notification, deliveries: [], recipients: 0, pending: false }
      }
      // Stamped by the database, as a publish to users is: one clock for every process's notifications.
      const { rows } = await q(
        `INSERT INTO $s.notifications (id, title, body, priority, created_at, data, topic, refs)
         VALUES ($1, $2, $3, $4, ${STAMP}, $5, $6, 0) RETURNING no`, // a broadcast's or topic's batches count theirs
        row,
      )
      const no = rows[0].no as number
      const job: Job = { no: 0, notification_no: no, topic, after: 0, up_to: upTo }
      const { deliveries, done } = await this.#batchOf(q, job)
      // Stamped again once the first batch's users are locked (as a publish to users is): one that waited for
      // a row reads as stored after what was committed meanwhile. The rest's batches come later (a job).
      notification.timestamp = (await q(`UPDATE $s.notifications SET created_at = ${STAMP} WHERE no = $1 RETURNING created_at`, [no]))
        .rows[0].created_at as string
      if (!done) {
        await q('INSERT INTO $s.fanout_jobs (notification_no, topic, after, up_to) VALUES ($1, $2, $3, $4)', [no, topic, job.after, upTo])
        await keyed(size)
        return { notification, deliveries, recipients: size, pending: true }
      }
      // Done in one batch: the recipients are the entries made. The batch reads the audience after the count (a
      // statement later, after a wait on a lock perhaps): those who left meanwhile (an unsubscribe) are not in it.
      const recipients = deliveries.length
      // All of them gone: no inbox holds the notification, and retention would never reach it (as a job that ends so).
      if (recipients === 0) await q('DELETE FROM $s.notifications WHERE no = $1', [no])
      await keyed(recipients)
      return { notification, deliveries, recipients, pending: false }
    })
  }

  /**
   * Gives each of these users (by `no`) the next seq and an inbox entry of
   * notification `no`: the users' rows are locked in `no` order, the same
   * order in every transaction, so concurrent publishes cannot deadlock.
   */
  async #deliver(
    q: (text: string, values?: unknown[]) => Promise<pg.QueryResult>,
    userNos: readonly number[],
    no: number,
  ): Promise<Delivery[]> {
    if (userNos.length === 0) return []
    const { rows } = await q(
      `WITH locked AS (SELECT no FROM $s.users WHERE no = ANY($1) ORDER BY no FOR UPDATE),
            bumped AS (UPDATE $s.users u SET latest_seq = u.latest_seq + 1, unread = u.unread + 1
                       FROM locked WHERE u.no = locked.no RETURNING u.no, u.id, u.latest_seq),
            entries AS (INSERT INTO $s.inbox (user_no, seq, notification_no) SELECT no, latest_seq, $2 FROM bumped)
       SELECT id AS "userId", latest_seq AS seq FROM bumped`,
      [userNos, no],
    )
    return rows as Delivery[]
  }

  /** Makes the next batch of `job`'s audience and moves `job.after` past it. */
  async #batchOf(
    q: (text: string, values?: unknown[]) => Promise<pg.QueryResult>,
    job: Job,
  ): Promise<{ deliveries: Delivery[]; done: boolean }> {
    const { rows } = await q(
      job.topic === null
        ? 'SELECT no, no AS user_no FROM $s.users WHERE no > $1 AND no <= $2 ORDER BY no LIMIT $3'
        : 'SELECT no, user_no FROM $s.subscriptions WHERE topic = $4 AND no > $1 AND no <= $2 ORDER BY no LIMIT $3',
      job.topic === null ? [job.after, job.up_to, this.#batch] : [job.after, job.up_to, this.#batch, job.topic],
    )
    const userNos = rows.map((r) => r.user_no as number).sort((a, b) => a - b)
    const deliveries = await this.#deliver(q, userNos, job.notification_no)
    if (deliveries.length > 0)
      await q('UPDATE $s.notifications SET refs = refs + $1 WHERE no = $2', [deliveries.length, job.notification_no])
    const last = rows.length > 0 ? (rows.at(-1)!.no as number) : job.up_to
    job.after = last
    return { deliveries, done: rows.length < this.#batch || last >= job.up_to }
  }

  async fanOut(): Promise<FanOutBatch | undefined> {
    return this.#tx(async (q) => {
      // A job another process is working on is skipped: its row is locked for that batch.
      const job = (await q('SELECT * FROM $s.fanout_jobs ORDER BY no LIMIT 1 FOR UPDATE SKIP LOCKED')).rows[0] as Job | undefined
      if (!job) return undefined
      const { deliveries, done } = await this.#batchOf(q, job)
      if (done) await q('DELETE FROM $s.fanout_jobs WHERE no = $1', [job.no])
      else await q('UPDATE $s.fanout_jobs SET after = $1 WHERE no = $2', [job.after, job.no])
      // Locked (as a batch that made entries has it already, by counting them): a retention pass that lowers its
      // count meanwhile either commits first, its count then read here, or waits for this job's end and sees
      // the job gone. Else each could find the notification held by the other and keep it, with no inbox holding it.
      const row = (await q('SELECT * FROM $s.notifications WHERE no = $1 FOR UPDATE', [job.notification_no])).rows[0] as Row & {
        no: number
      }
      // A job whose audience left before it reached them leaves a notification no inbox holds: it goes.
      if (done) await q('DELETE FROM $s.notifications WHERE no = $1 AND refs <= 0', [job.notification_no])
      return { notification: toStored(row), deliveries, done }
    })
  }

  async latestSeqs(userIds: readonly string[]): Promise<Map<string, { seq: number; unreadCount: number }>> {
    if (userIds.length === 0) return new Map()
    const { rows } = await this.#query('SELECT id, latest_seq, unread FROM $s.users WHERE id = ANY($1)', [userIds])
    return new Map(rows.map((r) => [r.id as string, { seq: r.latest_seq as number, unreadCount: r.unread as number }]))
  }

  async touchUser(userId: string): Promise<UserState> {
    const taken = this.#acks.unwritten(userId)
    const { rows } = await this.#query(
      `WITH ins AS (INSERT INTO $s.users (id) VALUES ($1) ON CONFLICT (id) DO NOTHING RETURNING latest_seq, acked_seq, unread, floor_seq)
       SELECT latest_seq AS "latestSeq", acked_seq AS "ackedSeq", unread AS "unreadCount", floor_seq AS floor FROM ins
       UNION ALL SELECT latest_seq, acked_seq, unread, floor_seq FROM $s.users WHERE id = $1
       LIMIT 1`,
      [userId],
      'belfry_touch_user',
    )
    // Nothing when another transaction was inserting the user: the insert waited for its commit and did
    // nothing, and the SELECT beside it reads the snapshot from before. A statement of its own sees the row.
    if (rows[0]) return this.#withAcks(rows[0] as UserState, userId, taken)
    const known = await this.user(userId)
    if (!known) throw new Error('touchUser: the user is missing from the users table after it was recorded')
    return known
  }

  async user(userId: string): Promise<UserState | undefined> {
    const taken = this.#acks.unwritten(userId)
    const { rows } = await this.#query(
      `SELECT latest_seq AS "latestSeq", acked_seq AS "ackedSeq", unread AS "unreadCount", floor_seq AS floor FROM $s.users WHERE id = $1`,
      [userId],
    )
    const known = rows[0] as UserState | undefined
    return known && this.#withAcks(known, userId, taken)
  }

  /**
   * Counters read with the acks not written when the read began (`taken`) and when it ended. Either alone can miss
   * one: an ack whose write commits after the read's snapshot but is answered before the read is, is no longer
   * unwritten at the end, and is not in what the read saw.
   */
  #withAcks(state: UserState, userId: string, taken: number | undefined): UserState {
    return withUnwrittenAck(withUnwrittenAck(state, taken), this.#acks.unwritten(userId))
  }

  async after(userId: string, after: number, limit: number): Promise<Notification[]> {
    const { rows } = await this.#query(
      `${SELECT} WHERE i.user_no = (SELECT no FROM $s.users WHERE id = $1) AND i.seq > $2 ORDER BY i.seq LIMIT $3`,
      [userId, after, limit],
      'belfry_after',
    )
    return (rows as Row[]).map(toNotification)
  }

  async history(userId: string, before: number | undefined, limit: number): Promise<Notification[]> {
    const { rows } = await this.#query(
      `${SELECT} WHERE i.user_no = (SELECT no FROM $s.users WHERE id = $1) AND i.seq < $2 ORDER BY i.seq DESC LIMIT $3`,
      [userId, before ?? Number.MAX_SAFE_INTEGER, limit],
    )
    return (rows as Row[]).map(toNotification)
  }

  /**
   * Acks gather for {@link ACK_WINDOW_MS} and are written by one statement:
   * every connected client's heartbeat acks, spread over the interval, and one
   * round trip and one row lock per ack would queue publishes behind them.
   */
  ack(userId: string, seq: number): Promise<number> {
    return this.#acks.add(userId, seq)
  }

  async #writeAcks(acks: Map<string, number>): Promise<Map<string, number>> {
    // The users' rows locked in `no` order, as a publish locks them: no deadlock between the two.
    const { rows } = await this.#retrying(
      `WITH a AS (SELECT * FROM unnest($1::text[], $2::bigint[]) AS a(id, seq)),
            locked AS (SELECT u.no, a.seq FROM $s.users u JOIN a ON u.id = a.id ORDER BY u.no FOR UPDATE OF u)
       UPDATE $s.users u SET acked_seq = greatest(u.acked_seq, least(locked.seq, u.latest_seq))
       FROM locked WHERE u.no = locked.no RETURNING u.id, u.acked_seq`,
      [[...acks.keys()], [...acks.values()]],
      'belfry_acks',
    )
    // An unknown user has no cursor to move: 0.
    const acked = new Map([...acks.keys()].map((id) => [id, 0]))
    for (const row of rows as { id: string; acked_seq: number }[]) acked.set(row.id, row.acked_seq)
    return acked
  }

  async markRead(userId: string, ids: readonly string[] | 'all', upTo = Number.POSITIVE_INFINITY): Promise<ReadChange> {
    return this.#tx(async (q) => {
      // The user's row first: a publish to this user waits, so the unread count and the entries agree.
      const user = (await q('SELECT no, latest_seq FROM $s.users WHERE id = $1 FOR UPDATE', [userId])).rows[0] as
        | { no: number; latest_seq: number }
        | undefined
      if (!user)
        return ids === 'all' ? { ids: [], all: true, seq: 0, unreadCount: 0, upTo: 0 } : { ids: [], all: false, seq: 0, unreadCount: 0 }
      if (ids === 'all') {
        const end = Math.min(upTo, user.latest_seq)
        const { rowCount } = await q('UPDATE $s.inbox SET read = true WHERE user_no = $1 AND read = false AND seq <= $2', [user.no, end])
        // Up to the latest none is unread; below it, those above the bound still are.
        const { rows } = await q(
          'UPDATE $s.users SET unread = CASE WHEN $3 THEN 0 ELSE greatest(0, unread - $2) END WHERE no = $1 RETURNING unread',
          [user.no, rowCount ?? 0, end === user.latest_seq],
        )
        return { ids: [], all: true, seq: user.latest_seq, unreadCount: rows[0].unread as number, upTo: end }
      }
      const changed = (
        await q(
          `UPDATE $s.inbox i SET read = true FROM $s.notifications n
           WHERE i.user_no = $1 AND i.read = false AND n.no = i.notification_no AND n.id = ANY($2) RETURNING n.id`,
          [user.no, ids],
        )
      ).rows.map((r) => r.id as string)
      const { rows } = await q('UPDATE $s.users SET unread = greatest(0, unread - $2) WHERE no = $1 RETURNING unread', [
        user.no,
        changed.length,
      ])
      return { ids: changed, all: false, seq: user.latest_seq, unreadCount: rows[0].unread as number }
    })
  }

  async subscribe(userId: string, topics: readonly string[], max: number): Promise<string[]> {
    return this.#tx(async (q) => {
      await q('INSERT INTO $s.users (id) VALUES ($1) ON CONFLICT (id) DO NOTHING', [userId])
      // Locked: two subscribes of one user at once cannot both pass the cap.
      const { no } = (await q('SELECT no FROM $s.users WHERE id = $1 FOR UPDATE', [userId])).rows[0] as { no: number }
      const held = new Set((await q('SELECT topic FROM $s.subscriptions WHERE user_no = $1', [no])).rows.map((r) => r.topic as string))
      const adding: string[] = []
      const full: string[] = []
      for (const topic of topics) {
        if (held.has(topic)) continue
        if (held.size >= max) full.push(topic)
        else {
          held.add(topic)
          adding.push(topic)
        }
      }
      if (adding.length > 0) {
        await q(
          `INSERT INTO $s.subscriptions (topic, user_no) SELECT t, $2 FROM unnest($1::text[]) WITH ORDINALITY AS x(t, i)
           ORDER BY i ON CONFLICT DO NOTHING`,
          [adding, no],
        )
      }
      return full
    })
  }

  async unsubscribe(userId: string, topics: readonly string[]): Promise<void> {
    await this.#query('DELETE FROM $s.subscriptions WHERE user_no = (SELECT no FROM $s.users WHERE id = $1) AND topic = ANY($2)', [
      userId,
      topics,
    ])
  }

  async topics(userId: string): Promise<string[]> {
    const { rows } = await this.#query('SELECT topic FROM $s.subscriptions WHERE user_no = (SELECT no FROM $s.users WHERE id = $1)', [
      userId,
    ])
    return rows.map((r) => r.topic as string)
  }

  /**
   * The users of the next page that have something to remove are found
   * without a lock, and where each one's cut falls, a few users at a time
   * until the batch's budget is spent (the walk through a user's old entries
   * is the long part: it holds no lock). Then one transaction locks only the
   * users it cuts (in `no` order, as a publish does, skipping those a publish
   * holds now: the next pass takes them), and removes their entries up to the
   * cut, or less if another process moved the floor meanwhile. A publish to a
   * user this batch leaves never waits for it. A cut read before the lock is
   * never past what the rule removes when it is taken: entries only come
   * after the latest, and an entry's age only grows.
   */
  async prune(rule: RetentionRule, after: number): Promise<PruneBatch> {
    const { maxPerUser = null, before = null } = rule
    const { rows: page } = await this.#query(
      `SELECT no, latest_seq > floor_seq AND (
                latest_seq - floor_seq > $2::bigint
                OR EXISTS (SELECT 1 FROM $s.inbox i JOIN $s.notifications n ON n.no = i.notification_no
                           WHERE i.user_no = u.no AND i.seq = u.floor_seq + 1 AND n.created_at < $3::text COLLATE "C")
              ) AS due
       FROM $s.users u WHERE no > $1 ORDER BY no LIMIT $4`,
      [after, maxPerUser, before, PRUNE_USERS],
    )
    const due = page.filter((r) => r.due === true).map((r) => r.no as number)
    // A full page may have users after it; a short one was the last.
    const next = page.length === PRUNE_USERS ? (page.at(-1)!.no as number) : undefined
    if (due.length === 0) return { removed: 0, unread: 0, users: 0, notifications: 0, next }
    const batch: PruneBatch = { removed: 0, unread: 0, users: 0, notifications: 0, next }
    const planned: { no: number; upTo: number }[] = []
    let budget = this.#pruneBatch
    plan: for (let i = 0; i < due.length; i += PRUNE_PLAN_USERS) {
      const { rows: users } = await this.#query(
        `SELECT u.no, u.floor_seq AS floor, u.latest_seq AS latest, CASE WHEN $3::text IS NULL THEN NULL ELSE
                  (SELECT i.seq FROM $s.inbox i JOIN $s.notifications n ON n.no = i.notification_no
                   WHERE i.user_no = u.no AND i.seq > greatest(u.floor_seq, u.latest_seq - $2::bigint)
                   AND n.created_at >= $3::text COLLATE "C" ORDER BY i.seq LIMIT 1) END AS kept
         FROM $s.users u WHERE u.no = ANY($1) ORDER BY u.no`,
        [due.slice(i, i + PRUNE_PLAN_USERS), maxPerUser, before],
      )
      for (const u of users as { no: number; floor: number; latest: number; kept: number | null }[]) {
        const upTo = pruneCut(u, rule, () => u.kept ?? undefined)
        if (upTo <= u.floor) continue
        // Out of budget: this user (or the rest of its entries) starts the next batch.
        if (budget === 0) {
          batch.next = u.no - 1
          break plan
        }
        const cut = Math.min(upTo, u.floor + budget)
        planned.push({ no: u.no, upTo: cut })
        budget -= cut - u.floor
        if (cut < upTo) {
          batch.next = u.no - 1
          break plan
        }
      }
    }
    if (planned.length === 0) return batch
    return this.#tx(async (q) => {
      const { rows: held } = await q('SELECT no, floor_seq AS floor FROM $s.users WHERE no = ANY($1) ORDER BY no FOR UPDATE SKIP LOCKED', [
        planned.map((c) => c.no),
      ])
      // Held now: no publish to these users commits meanwhile. A floor another process raised since the plan leaves less.
      const floors = new Map((held as { no: number; floor: number }[]).map((u) => [u.no, u.floor]))
      // A held user is left for the next pass, the one whose cut the next batch was to go on with too:
      // else that batch would plan it again, and again while it is held, never reaching the users after it.
      const last = planned.at(-1)!
      if (batch.next === last.no - 1 && !floors.has(last.no)) batch.next = last.no
      const cuts = planned.filter((c) => floors.has(c.no) && c.upTo > floors.get(c.no)!)
      if (cuts.length === 0) return batch
      const { rows: gone } = await q(
        `DELETE FROM $s.inbox i USING unnest($1::bigint[], $2::bigint[]) AS c(user_no, up_to)
         WHERE i.user_no = c.user_no AND i.seq <= c.up_to RETURNING i.user_no, i.notification_no, i.read`,
        [cuts.map((c) => c.no), cuts.map((c) => c.upTo)],
      )
      const unread = new Map<number, number>()
      const unrefs = new Map<number, number>()
      for (const g of gone as { user_no: number; notification_no: number; read: boolean }[]) {
        if (!g.read) unread.set(g.user_no, (unread.get(g.user_no) ?? 0) + 1)
        unrefs.set(g.notification_no, (unrefs.get(g.notification_no) ?? 0) + 1)
      }
      const { rows: lowered } = await q(
        `UPDATE $s.users u SET floor_seq = c.up_to, unread = greatest(0, u.unread - c.unread)
         FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS c(no, up_to, unread) WHERE u.no = c.no
         RETURNING u.id AS "userId", u.latest_seq AS seq, u.unread AS "unreadCount", c.unread AS removed`,
        [cuts.map((c) => c.no), cuts.map((c) => c.upTo), cuts.map((c) => unread.get(c.no) ?? 0)],
      )
      batch.unreadChanges = lowered.filter((r) => r.removed > 0).map(({ userId, seq, unreadCount }) => ({ userId, seq, unreadCount }))
      // Their rows locked in `no` order first, as users' are: another process's batch that holds some of the same
      // notifications (other users' entries of them, in another seq order) waits, where locking them in this batch's
      // order, as the update reaches them, could deadlock with it.
      const nos = [...unrefs.keys()].sort((a, b) => a - b)
      await q('SELECT no FROM $s.notifications WHERE no = ANY($1) ORDER BY no FOR UPDATE', [nos])
      const { rows: left } = await q(
        `UPDATE $s.notifications n SET refs = n.refs - c.n FROM unnest($1::bigint[], $2::bigint[]) AS c(no, n)
         WHERE n.no = c.no RETURNING n.no, n.refs`,
        [nos, nos.map((no) => unrefs.get(no)!)],
      )
      const orphans = left.filter((r) => (r.refs as number) <= 0).map((r) => r.no as number)
      if (orphans.length > 0) {
        const dropped = await q(
          `DELETE FROM $s.notifications n WHERE n.no = ANY($1) AND n.refs <= 0
           AND NOT EXISTS (SELECT 1 FROM $s.fanout_jobs j WHERE j.notification_no = n.no)`,
          [orphans],
        )
        batch.notifications = dropped.rowCount ?? 0
      }
      batch.removed = gone.length
      batch.unread = [...unread.values()].reduce((a, b) => a + b, 0)
      // The last cut may be a part of its user's (the next batch goes on with it): that user counts there.
      batch.users = cuts.length - (batch.next !== undefined && cuts.at(-1)!.no === batch.next + 1 ? 1 : 0)
      return batch
    })
  }

  /** A write probe. */
  async check(): Promise<void> {
    await this.#query(
      'INSERT INTO $s.probe (id, checked_at) VALUES (1, now()) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at',
    )
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.#acks.flush()
      await this.#pool.end()
    })()
    return this.#closed
  }
}

const SELECT = `SELECT n.id, i.seq, n.title, n.body, n.priority, n.created_at, n.data, n.topic, i.read
  FROM $s.inbox i JOIN $s.notifications n ON n.no = i.notification_no`

function toStored(row: Pick<Row, 'id' | 'title' | 'body' | 'priority' | 'created_at' | 'data' | 'topic'>): StoredNotification {
  const n: StoredNotification = { id: row.id, title: row.title, body: row.body, priority: row.priority, timestamp: row.created_at }
  if (row.data !== null) n.data = JSON.parse(row.data) as JsonObject
  if (row.topic !== null) n.topic = row.topic
  return n
}

function toNotification(row: Row): Notification {
  const { data, topic, ...stored } = toStored(row)
  const n: Notification = { ...stored, seq: row.seq, read: row.read }
  if (data !== undefined) n.data = data
  if (topic !== undefined) n.topic = topic
  return n
}
