/**
 * PostgresStore against a private PostgreSQL 15: the store contract (a
 * schema per test on one server), and what only PostgreSQL has to get right —
 * migrations when processes start together, seqs under real concurrency, a
 * lost and recovered database.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { memoryStorage } from '../../src/index.js'
import { PostgresStore } from '../../src/server/index.js'
import { EXPIRED_KEYS_BATCH, type PruneBatch } from '../../src/server/store/store.js'
import { prunePass, storeContract } from '../contract/store.js'
import { ClientPool, holds } from '../helpers/client.js'
import { MarkerProxy, type Proxied } from '../helpers/marker-proxy.js'
import { usePostgres, waitingForLock } from '../helpers/postgres.js'
import { DAY_MS, type InboxCount, pruneWhilePublishing } from '../helpers/retention.js'
import { API_KEY, useServer } from '../helpers/server.js'
import { startPostgres } from '../helpers/services.js'

const db = usePostgres()

const schema = () => `t_${randomBytes(6).toString('hex')}`

storeContract('PostgresStore', async () => {
  const s = schema()
  return {
    open: (options) => PostgresStore.open(db.url, { schema: s, ...options }),
    reopen: (options) => PostgresStore.open(db.url, { schema: s, ...options }),
    dispose: async () => {
      const client = new pg.Client(db.url)
      await client.connect()
      await client.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`)
      await client.end()
    },
  }
})

describe('PostgresStore: what PostgreSQL adds', () => {
  // Regression: the second close() saw the first's flag and resolved at once, its acks not yet written, the pool not ended.
  it('resolves a second close(), made while the first writes its gathered acks, only once they are written', async () => {
    const s = schema()
    const store = await PostgresStore.open(db.url, { schema: s })
    for (const i of [1, 2, 3]) await store.publish({ userIds: ['u'] }, { title: `n${i}`, body: '' })
    // The ack's write waits for the user's row, which another transaction holds.
    const holder = new pg.Client(db.url)
    const watcher = new pg.Client(db.url)
    await holder.connect()
    await watcher.connect()
    await holder.query('BEGIN')
    await holder.query(`SELECT 1 FROM ${s}.users WHERE id = 'u' FOR UPDATE`)
    const acked = store.ack('u', 2).catch(() => -1)
    const first = store.close()
    await waitingForLock(watcher, 'SET acked_seq')
    let ackedAtSecondClose: unknown
    const second = store.close().then(async () => {
      ackedAtSecondClose = (await watcher.query(`SELECT acked_seq FROM ${s}.users WHERE id = 'u'`)).rows[0].acked_seq
    })
    await new Promise((resolve) => setTimeout(resolve, 300)) // a second close() that does not wait resolves meanwhile
    await holder.query('COMMIT')
    await Promise.all([first, second])
    expect(await acked).toBe(2)
    await holder.end()
    await watcher.end()
    expect(ackedAtSecondClose).toBe('2')
  })

  it('migrates once when several processes open the same fresh schema at once', async () => {
    const s = schema()
    const stores = await Promise.all(Array.from({ length: 6 }, () => PostgresStore.open(db.url, { schema: s, poolSize: 2 })))
    const client = new pg.Client(db.url)
    await client.connect()
    const { rows } = await client.query(`SELECT version FROM ${s}.migrations ORDER BY version`)
    expect(rows.map((r) => r.version)).toEqual([1, 2, 3, 4])
    await client.end()
    // One deployment: every process has its token, which no other schema has, and which a later open finds again.
    const token = stores[0]!.deployment
    expect(token).toMatch(/^[0-9a-f-]{36}$/)
    expect(stores.map((store) => store.deployment)).toEqual(stores.map(() => token))
    const other = await PostgresStore.open(db.url, { schema: schema() })
    expect(other.deployment).not.toBe(token)
    await other.close()
    await stores[0]!.close()
    const again = await PostgresStore.open(db.url, { schema: s })
    expect(again.deployment).toBe(token)
    stores[0] = again
    // And every one of them works.
    const results = await Promise.all(stores.map((store, i) => store.publish({ userIds: ['ann'] }, { title: `n${i}`, body: '' })))
    expect(results.map((r) => r.deliveries[0]!.seq).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6])
    for (const store of stores) await store.close()
  })

  it('keeps each user’s seqs gap-free in commit order under concurrent multi-user publishes, and no deadlock escapes', async () => {
    const s = schema()
    const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresStore.open(db.url, { schema: s, poolSize: 4 })))
    const users = Array.from({ length: 20 }, (_, i) => `u${i}`)
    // Overlapping audiences in different orders: the classic deadlock shape.
    const audiences = Array.from({ length: 120 }, (_, i) => {
      const picked = users.filter((_, j) => (i * 7 + j * 3) % 5 < 2)
      return i % 2 ? picked : [...picked].reverse()
    })
    await Promise.all(audiences.map((userIds, i) => stores[i % stores.length]!.publish({ userIds }, { title: `p${i}`, body: '' })))
    for (const u of users) {
      const state = await stores[0]!.touchUser(u)
      const seqs = (await stores[0]!.after(u, 0, 1000)).map((n) => n.seq)
      expect(seqs, u).toEqual(Array.from({ length: state.latestSeq }, (_, i) => i + 1))
      expect(state.latestSeq, u).toBe(audiences.filter((a) => a.includes(u)).length)
    }
    for (const store of stores) await store.close()
  })

  it("writes the acks of a short window in one statement, in the users' lock order, each caller told its cursor", async () => {
    const s = schema()
    const store = await PostgresStore.open(db.url, { schema: s })
    const users = Array.from({ length: 50 }, (_, i) => `acker${i}`)
    // Each user's latest seq is 3, except the first's (1): an ack never moves past it.
    await store.publish({ userIds: users }, { title: 'one', body: '' })
    await store.publish({ userIds: users.slice(1) }, { title: 'two', body: '' })
    await store.publish({ userIds: users.slice(1) }, { title: 'three', body: '' })
    const client = new pg.Client(db.url)
    await client.connect()
    // Every write statement takes a transaction id: the ids taken between two reads count them.
    const xid = async () => Number((await client.query('SELECT txid_current() AS x')).rows[0].x)
    const before = await xid()
    const acked = await Promise.all([
      ...users.map((u) => store.ack(u, 2)),
      store.ack(users[2]!, 3), // the same user twice: the higher wins
      store.ack('nobody', 5),
      // A multi-user publish locking the same rows meanwhile: no deadlock.
      store.publish({ userIds: users.slice(1).reverse() }, { title: 'four', body: '' }),
    ])
    const statements = (await xid()) - before - 1
    expect(statements).toBeLessThanOrEqual(2) // the acks' one, the publish's one (one ack each would be 52)
    expect(acked.slice(0, 3)).toEqual([1, 2, 3])
    expect(acked.slice(3, 50)).toEqual(users.slice(3).map(() => 2))
    expect(acked.slice(50, 52)).toEqual([3, 0])
    expect((await store.user(users[2]!))?.ackedSeq).toBe(3)
    await client.end()
    await store.close()
  })

  it('migrates a schema of version 1: each notification counts the inbox entries that hold it, retention and idempotency keys work on it', async () => {
    const s = schema()
    const store = await PostgresStore.open(db.url, { schema: s })
    await store.publish({ userIds: ['ann', 'bob'] }, { title: 'shared', body: '' })
    await store.publish({ userIds: ['ann'] }, { title: 'own', body: '' })
    await store.close()
    const client = new pg.Client(db.url)
    await client.connect()
    // Back to version 1, as belfry before retention left it.
    await client.query(`ALTER TABLE ${s}.users DROP COLUMN floor_seq; ALTER TABLE ${s}.notifications DROP COLUMN refs;
                        DROP TABLE ${s}.idempotency_keys; DROP TABLE ${s}.deployment; DELETE FROM ${s}.migrations WHERE version >= 2`)
    const migrated = await PostgresStore.open(db.url, { schema: s })
    // A schema made before deployments had a token gets one.
    expect(migrated.deployment).toMatch(/^[0-9a-f-]{36}$/)
    const { rows } = await client.query(`SELECT title, refs FROM ${s}.notifications ORDER BY no`)
    expect(rows).toEqual([
      { title: 'shared', refs: '2' },
      { title: 'own', refs: '1' },
    ])
    expect(await prunePass(migrated, { maxPerUser: 0 })).toMatchObject({ removed: 3, notifications: 2 })
    expect((await client.query(`SELECT count(*)::int AS n FROM ${s}.notifications`)).rows[0].n).toBe(0)
    // And idempotency keys.
    const key = { key: 'k', ttlMs: 60_000 }
    const first = await migrated.publish({ userIds: ['ann'] }, { title: 'keyed', body: '' }, key)
    expect(await migrated.publish({ userIds: ['ann'] }, { title: 'keyed', body: '' }, key)).toMatchObject({
      notification: { id: first.notification.id },
      replayed: true,
    })
    await client.end()
    await migrated.close()
  })

  it('removes expired idempotency keys at keyed publishes, a bounded batch each', async () => {
    const s = schema()
    const store = await PostgresStore.open(db.url, { schema: s })
    const client = new pg.Client(db.url)
    await client.connect()
    try {
      await client.query(
        `INSERT INTO ${s}.idempotency_keys (key, fingerprint, id, created_at, recipients, expires_at)
         SELECT 'old' || i, 'f', 'n', '2026-01-01T00:00:00.000Z', 1, $1::bigint + i FROM generate_series(1, 250) i
         UNION ALL SELECT 'live', 'f', 'n', '2026-01-01T00:00:00.000Z', 1, $1::bigint + 3600000`,
        [Date.now() - 1000],
      )
      const keys = async () => (await client.query(`SELECT count(*)::int AS n FROM ${s}.idempotency_keys`)).rows[0].n as number
      await store.publish({ userIds: ['ann'] }, { title: 'unkeyed', body: '' })
      expect(await keys()).toBe(251)
      await store.publish({ userIds: ['ann'] }, { title: 'keyed', body: '' }, { key: 'k1', ttlMs: 60_000 })
      expect(await keys()).toBe(251 - EXPIRED_KEYS_BATCH + 1)
      await store.publish({ userIds: ['ann'] }, { title: 'keyed', body: '' }, { key: 'k2', ttlMs: 60_000 })
      await store.publish({ userIds: ['ann'] }, { title: 'keyed', body: '' }, { key: 'k3', ttlMs: 60_000 })
      expect((await client.query(`SELECT key FROM ${s}.idempotency_keys ORDER BY key`)).rows.map((r) => r.key)).toEqual([
        'k1',
        'k2',
        'k3',
        'live',
      ])
    } finally {
      await client.end()
      await store.close()
    }
  })

  it('never waits for a user a transaction holds: a pass leaves it for the next one', async () => {
    const s = schema()
    const store = await PostgresStore.open(db.url, { schema: s })
    for (let i = 0; i < 5; i++) await store.publish({ userIds: ['ann', 'bob'] }, { title: `n${i}`, body: '' })
    const holder = new pg.Client(db.url)
    await holder.connect()
    try {
      // As a long publish to ann would: her counter row is locked until it commits.
      await holder.query('BEGIN')
      await holder.query(`SELECT 1 FROM ${s}.users WHERE id = 'ann' FOR UPDATE`)
      expect(await prunePass(store, { maxPerUser: 2 })).toMatchObject({ removed: 3, users: 1 })
      expect(await store.user('ann')).toMatchObject({ floor: 0 })
      expect(await store.user('bob')).toMatchObject({ floor: 3 })
      await holder.query('COMMIT')
      expect(await prunePass(store, { maxPerUser: 2 })).toMatchObject({ removed: 3, users: 1 })
      expect(await store.user('ann')).toMatchObject({ floor: 3, unreadCount: 2 })
    } finally {
      await holder.end()
      await store.close()
    }
  })

  it('rejects while PostgreSQL is down (a publish never resolves for what is not durable), and works again when it is back', async () => {
    const own = await startPostgres()
    try {
      const store = await PostgresStore.open(own.url, { connectTimeoutMs: 1000 })
      await store.publish({ userIds: ['ann'] }, { title: 'before', body: '' })
      await own.stop()
      await expect(store.publish({ userIds: ['ann'] }, { title: 'lost', body: '' })).rejects.toThrow()
      await expect(store.check()).rejects.toThrow()
      await own.start()
      await store.check()
      const after = await store.publish({ userIds: ['ann'] }, { title: 'after', body: '' })
      expect(after.deliveries).toEqual([{ userId: 'ann', seq: 2 }])
      expect((await store.after('ann', 0, 10)).map((n) => n.title)).toEqual(['before', 'after'])
      await store.close()
    } finally {
      await own.dispose()
    }
  }, 60_000)

  it('fails a publish that waits on a lock longer than queryTimeoutMs, and works once the lock is gone', async () => {
    const s = schema()
    const store = await PostgresStore.open(db.url, { schema: s, queryTimeoutMs: 300 })
    await store.publish({ userIds: ['ann'] }, { title: 'n1', body: '' })
    const locker = new pg.Client(db.url)
    await locker.connect()
    await locker.query('BEGIN')
    await locker.query(`LOCK TABLE ${s}.users IN ACCESS EXCLUSIVE MODE`)
    const started = Date.now()
    await expect(store.publish({ userIds: ['ann'] }, { title: 'n2', body: '' })).rejects.toMatchObject({ code: '57014' }) // query_canceled
    const waited = Date.now() - started
    await locker.query('ROLLBACK')
    await locker.end()
    expect(waited).toBeGreaterThanOrEqual(250)
    expect((await store.publish({ userIds: ['ann'] }, { title: 'n3', body: '' })).deliveries).toEqual([{ userId: 'ann', seq: 2 }])
    await store.close()
    await expect(PostgresStore.open(db.url, { schema: s, queryTimeoutMs: 0 })).rejects.toThrow(
      'options.queryTimeoutMs must be a whole number of ms from 1 to 2147481647, got 0',
    )
  })

  it('keeps no notification that no inbox holds: none for an empty audience, and a job that ends with none drops it', async () => {
    const s = schema()
    const store = await PostgresStore.open(db.url, { schema: s, fanOutBatch: 1 })
    const client = new pg.Client(db.url)
    await client.connect()
    const titles = async () => (await client.query(`SELECT title FROM ${s}.notifications ORDER BY no`)).rows
    expect(await store.publish({ topic: 'nobody' }, { title: 'unheard', body: '' })).toMatchObject({ recipients: 0, pending: false })
    expect(await store.publish({ broadcast: true }, { title: 'to no one', body: '' })).toMatchObject({ recipients: 0, pending: false })
    // Regression: an empty userIds list stored a notification (two: it tried again) and then threw.
    expect(await store.publish({ userIds: [] }, { title: 'to nobody named', body: '' })).toMatchObject({ recipients: 0, pending: false })
    expect(await titles()).toEqual([])
    await store.subscribe('a', ['news'], 10)
    await store.subscribe('b', ['news'], 10)
    expect(await store.publish({ topic: 'news' }, { title: 'topical', body: '' })).toMatchObject({
      deliveries: [{ userId: 'a', seq: 1 }],
      pending: true,
    })
    await store.publish({ userIds: ['a'] }, { title: 'newer', body: '' })
    expect(await store.prune({ maxPerUser: 1 }, 0)).toMatchObject({ removed: 1, notifications: 0 }) // the job still runs
    await store.unsubscribe('b', ['news'])
    expect(await store.fanOut()).toMatchObject({ deliveries: [], done: true })
    expect(await titles()).toEqual([{ title: 'newer' }])
    await client.end()
    await store.close()
  })

  it('touchUser of a new user another process records at that moment (not committed yet) resolves with its counters', async () => {
    // Regression: the insert waited for the other transaction, found the row and returned nothing; the SELECT beside it used the older snapshot.
    const s = schema()
    const store = await PostgresStore.open(db.url, { schema: s })
    const other = new pg.Client(db.url)
    await other.connect()
    try {
      // Another process records the same new user (its connect, subscribe or publish), not committed yet.
      await other.query('BEGIN')
      await other.query(`INSERT INTO ${s}.users (id) VALUES ('ann')`)
      const touching = store.touchUser('ann')
      await new Promise((r) => setTimeout(r, 300))
      await other.query('COMMIT')
      // auth.ts reads user.floor and user.latestSeq of this: undefined failed the connection (1011).
      expect(await touching).toEqual({ latestSeq: 0, ackedSeq: 0, unreadCount: 0, floor: 0 })
    } finally {
      await other.end()
      await store.close()
    }
  })

  it('touchUser of a new user from two processes at once answers each with its counters', async () => {
    // Regression: the one whose insert lost the race resolved undefined.
    const s = schema()
    const a = await PostgresStore.open(db.url, { schema: s, poolSize: 4 })
    const b = await PostgresStore.open(db.url, { schema: s, poolSize: 4 })
    try {
      const failures: string[] = []
      const started = Date.now()
      // Bounded: rounds until the first failure, at most 2 s.
      for (let round = 0; Date.now() - started < 2000 && failures.length === 0; round++) {
        const id = `new${round}`
        const results = await Promise.allSettled([a.touchUser(id), b.touchUser(id), a.touchUser(id), b.touchUser(id)])
        for (const r of results) {
          if (r.status === 'rejected') failures.push(`${id}: rejected ${(r.reason as Error).message}`)
          else if (r.value?.latestSeq !== 0) failures.push(`${id}: resolved ${JSON.stringify(r.value)}`)
        }
      }
      expect(failures).toEqual([])
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('a topic publish whose last subscriber leaves while it runs stores no notification that no inbox holds, and answers 0 recipients', async () => {
    // Regression: it counted the audience, then its first batch (after the unsubscribe) was empty: the notification stayed, recipients 1.
    const s = schema()
    // The reply to the count of the topic's audience waits here until the subscriber has left.
    const held: { chunk: Buffer; to: Proxied }[] = []
    let holding = true
    const proxy = new MarkerProxy(db.port, (chunk, to) => (holding ? held.push({ chunk, to }) : to.client.write(chunk)))
    const store = await PostgresStore.open(`postgres://postgres@127.0.0.1:${await proxy.listen()}/postgres`, { schema: s })
    const other = new pg.Client(db.url)
    await other.connect()
    try {
      await store.subscribe('ann', ['news'], 10)
      const key = { key: 'k', ttlMs: 60_000 }
      proxy.arm('AS size FROM')
      const publishing = store.publish({ topic: 'news' }, { title: 'hello', body: '' }, key)
      await expect.poll(() => held.length, { timeout: 10_000 }).toBeGreaterThan(0)
      // Meanwhile the only subscriber leaves.
      await store.unsubscribe('ann', ['news'])
      holding = false
      for (const h of held.splice(0)) h.to.client.write(h.chunk)
      const published = await publishing
      expect(published).toMatchObject({ deliveries: [], recipients: 0, pending: false })
      const { rows } = await other.query(
        `SELECT n.id, (SELECT count(*) FROM ${s}.inbox i WHERE i.notification_no = n.no)::int AS entries FROM ${s}.notifications n`,
      )
      expect(rows).toEqual([])
      // The key answers as the publish did.
      expect(await store.publish({ topic: 'news' }, { title: 'hello', body: '' }, key)).toMatchObject({
        notification: { id: published.notification.id },
        recipients: 0,
        replayed: true,
      })
    } finally {
      await other.end()
      await store.close()
      await proxy.close()
    }
  })

  it('refuses a poolSize or timeout that is not a whole number ≥ 1 (a timeout: within a timer’s range), saying what it got', async () => {
    // Regression: they went to pg unchecked (poolSize 0 or NaN: a pool that never gives a connection).
    await expect(PostgresStore.open(db.url, { poolSize: 0 })).rejects.toThrow(
      new TypeError('PostgresStore: options.poolSize must be a whole number ≥ 1, got 0'),
    )
    await expect(PostgresStore.open(db.url, { poolSize: 2.5 })).rejects.toThrow('options.poolSize must be a whole number ≥ 1, got 2.5')
    await expect(PostgresStore.open(db.url, { connectTimeoutMs: -1 })).rejects.toThrow(
      new TypeError('PostgresStore: options.connectTimeoutMs must be a whole number of ms from 1 to 2147483647, got -1'),
    )
    await expect(PostgresStore.open(db.url, { connectTimeoutMs: Number.NaN })).rejects.toThrow(
      'options.connectTimeoutMs must be a whole number of ms from 1 to 2147483647, got NaN',
    )
    // Past setTimeout's range: a pool that failed every connection after 1 ms, or PostgreSQL refusing the settings
    // made of the query timeout, in words that named none of these options.
    await expect(PostgresStore.open(db.url, { connectTimeoutMs: 2 ** 31 })).rejects.toThrow(
      'options.connectTimeoutMs must be a whole number of ms from 1 to 2147483647, got 2147483648',
    )
    for (const queryTimeoutMs of [2 ** 31 - 2000, 2 ** 40]) {
      await expect(PostgresStore.open(db.url, { queryTimeoutMs })).rejects.toThrow(
        `options.queryTimeoutMs must be a whole number of ms from 1 to 2147481647, got ${queryTimeoutMs}`,
      )
    }
    // The longest of each opens.
    const longest = await PostgresStore.open(db.url, { schema: schema(), connectTimeoutMs: 2 ** 31 - 1, queryTimeoutMs: 2 ** 31 - 2001 })
    await longest.close()
  })

  it('refuses, in one line, a database it cannot reach, and a schema of a newer belfry', async () => {
    const own = await startPostgres()
    const { port } = own
    await own.dispose()
    await expect(PostgresStore.open(`postgres://postgres:secret@127.0.0.1:${port}/postgres`, { connectTimeoutMs: 1000 })).rejects.toThrow(
      /^cannot use PostgreSQL at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/postgres: .*ECONNREFUSED/,
    )
    const s = schema()
    const store = await PostgresStore.open(db.url, { schema: s })
    await store.close()
    const client = new pg.Client(db.url)
    await client.connect()
    await client.query(`INSERT INTO ${s}.migrations (version) VALUES (99)`)
    await client.end()
    await expect(PostgresStore.open(db.url, { schema: s })).rejects.toThrow(/schema is version 99, newer than this belfry's \(4\)/)
  }, 60_000)
})

describe('PostgresStore: a publish with U+0000', () => {
  const start = useServer()

  it("is the client's fault, a 400: not a 503 that calls the store unavailable, with an error logged", async () => {
    const errors: string[] = []
    const logger = pino({ level: 'error' }, { write: (line: string) => void errors.push(line) })
    const s = await start({ store: await PostgresStore.open(db.url, { schema: schema() }), logger })
    const publish = (body: object) =>
      fetch(`${s.url}/api/notifications`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
        body: JSON.stringify(body),
      })
    expect((await publish({ userId: 'alice', title: 'a\u0000b', body: '' })).status).toBe(400)
    expect((await publish({ topic: 'news\u0000', title: 't', body: '' })).status).toBe(400)
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200)
    expect(errors).toEqual([])
    // What a publish may carry, it carries: a "\u0000" inside data is JSON text, stored as such.
    const res = await publish({ userId: 'alice', title: 't', body: '', data: { raw: 'a\u0000b' } })
    expect(res.status).toBe(201)
  })
})

describe('PostgresStore: retention on a running server', () => {
  const start = useServer()
  const clients = new ClientPool()
  afterEach(() => clients.closeAll())

  it('prunes 10,000 notifications over 100 users to its limits while publishes go on: no hole, right counts, the hint, the kept ones once', async () => {
    const s = schema()
    const users = 100
    const perUser = 100
    await (await PostgresStore.open(db.url, { schema: s })).close()
    const client = new pg.Client(db.url)
    await client.connect()
    const old = new Date(Date.now() - 10 * DAY_MS).toISOString()
    const recent = new Date(Date.now() - 3_600_000).toISOString()
    // As in the SQLite test: user uN's first N % 50 ten days old, every third one read.
    await client.query(
      `INSERT INTO ${s}.users (id, latest_seq, unread) SELECT 'u' || u, $2, $2 - $2 / 3 FROM generate_series(1, $1) u ORDER BY u;
       INSERT INTO ${s}.notifications (id, title, body, priority, created_at, refs)
         SELECT 'seed-' || u || '-' || seq, 'u' || u || ' #' || seq, '', 'medium', CASE WHEN seq <= u % 50 THEN $3 ELSE $4 END, 1
         FROM generate_series(1, $1) u CROSS JOIN generate_series(1, $2) seq;
       INSERT INTO ${s}.inbox (user_no, seq, notification_no, read)
         SELECT us.no, seq, n.no, seq % 3 = 0 FROM generate_series(1, $1) u CROSS JOIN generate_series(1, $2) seq
         JOIN ${s}.users us ON us.id = 'u' || u JOIN ${s}.notifications n ON n.id = 'seed-' || u || '-' || seq;`.replaceAll(
        /\$(\d)/g,
        (_, i) => String([users, perUser, `'${old}'`, `'${recent}'`][Number(i) - 1]),
      ),
    )
    const count = async (sql: string) => (await client.query(sql)).rows[0].n as number
    try {
      await pruneWhilePublishing(
        start,
        clients,
        {
          store: await PostgresStore.open(db.url, { schema: s, pruneBatch: 50 }),
          users,
          perUser,
          recount: async () =>
            (
              await client.query(
                `SELECT u.id, u.latest_seq::int AS latest, u.floor_seq::int AS floor, u.unread::int, count(i.seq)::int AS entries,
                        min(i.seq)::int AS first, max(i.seq)::int AS last, count(i.seq) FILTER (WHERE NOT i.read)::int AS "unreadEntries"
                 FROM ${s}.users u LEFT JOIN ${s}.inbox i ON i.user_no = u.no GROUP BY u.no ORDER BY u.no`,
              )
            ).rows as InboxCount[],
          badRefs: () =>
            count(
              `SELECT count(*)::int AS n FROM ${s}.notifications n
               LEFT JOIN (SELECT notification_no AS no, count(*) AS entries FROM ${s}.inbox GROUP BY notification_no) c ON c.no = n.no
               WHERE coalesce(c.entries, 0) <> n.refs OR n.refs = 0`,
            ),
          pruned: () => count(`SELECT count(*)::int AS n FROM ${s}.users WHERE floor_seq > 0`),
        },
        200,
      )
    } finally {
      await client.end()
    }
  }, 60_000)
})

// Regression: a batch locked every due user of its 500-user page and walked each one's old entries under the lock,
// though its budget cut only the first: a publish to any of them waited (2 s at 500 users of 1,000 old entries each).
describe('PostgresStore: a prune batch and publishes', () => {
  it('a prune batch holds only the users it cuts: a publish to one its budget leaves does not wait for it', async () => {
    const s = `t_${randomBytes(6).toString('hex')}`
    const pruner = await PostgresStore.open(db.url, { schema: s, pruneBatch: 3 })
    const publisher = await PostgresStore.open(db.url, { schema: s, queryTimeoutMs: 1000 })
    const holder = new pg.Client(db.url)
    await holder.connect()
    const watcher = new pg.Client(db.url) // outside the holder's transaction, which would see one snapshot of pg_stat_activity
    await watcher.connect()
    try {
      for (let i = 1; i <= 5; i++) await publisher.publish({ userIds: ['ann'] }, { title: `ann ${i}`, body: '' })
      for (let i = 1; i <= 5; i++) await publisher.publish({ userIds: ['bob'] }, { title: `bob ${i}`, body: '' })
      await new Promise((r) => setTimeout(r, 5))
      const before = new Date().toISOString()
      // The batch's budget (3) goes to ann: bob's entries stay for the next batch.
      await holder.query('BEGIN')
      await holder.query(`SELECT 1 FROM ${s}.notifications FOR UPDATE`)
      const batch = pruner.prune({ before }, 0).catch((error: Error) => error)
      // Wait until the batch is at its notifications (locked before their counts are lowered), its users' rows held.
      await waitingForLock(watcher, `${s}.notifications WHERE no = ANY`)
      const started = Date.now()
      const published = await publisher.publish({ userIds: ['bob'] }, { title: 'bob 6', body: '' }).catch((error: Error) => error)
      await holder.query('COMMIT')
      expect(await batch).toMatchObject({ removed: 3, next: 0 })
      expect((await pruner.user('bob'))?.floor).toBe(0) // the batch did not prune bob
      expect(published, `publish to bob after ${Date.now() - started} ms`).toMatchObject({ deliveries: [{ userId: 'bob', seq: 6 }] })
    } finally {
      await holder.end().catch(() => {})
      await watcher.end()
      await pruner.close()
      await publisher.close()
    }
  }, 30_000)
})

describe('one process on PostgreSQL with the in-process broker', () => {
  // BELFRY_DATABASE_URL without BELFRY_REDIS_URL. The server takes the in-process broker's events to come in commit order, and
  // passes a read change's frame on as it came (NotificationServer#route, `#ordered`). That holds on
  // SQLite, whose commits are synchronous; on PostgreSQL two transactions of one process commit on
  // two pooled connections, and the reply to one COMMIT may be read after the other's: a publish that
  // committed after a mark read can reach the user's sockets before the mark's frame. Its count,
  // taken before that notification, must not be the last word: the user's tabs must end on the
  // store's unread count (the `read` frame's count covers every entry up to its seq, and a tab that
  // was sent a later one is owed a newer count).
  const start = useServer()
  const clients = new ClientPool()
  afterEach(() => clients.closeAll())

  it('a mark read whose COMMIT reply is read after a later publish’s: the user’s tabs end on the store’s count', async () => {
    const store = await PostgresStore.open(db.url, { schema: `r_${randomBytes(5).toString('hex')}` })
    // The next mark read's result is held after its commit until `release()`: its COMMIT reply read late.
    let hold: Promise<void> | undefined
    let release = () => {}
    const markRead = store.markRead.bind(store)
    store.markRead = async (userId, ids) => {
      const change = await markRead(userId, ids)
      if (hold) await hold
      return change
    }
    const s = await start({ store }) // the in-process broker
    await s.server.sendToUser('ann', { title: 'one', body: '' })
    await s.server.sendToUser('ann', { title: 'two', body: '' })
    const tab = () => clients.online({ url: s.wsUrl, token: () => s.token('ann'), storage: memoryStorage() })
    const [x, y] = [await tab(), await tab()]
    await expect.poll(() => [x.client.unreadCount, y.client.unreadCount]).toEqual([2, 2])

    hold = new Promise((resolve) => {
      release = resolve
    })
    const marked = x.client.markRead([x.events.notifications[0]!.id]) // commits: 1 unread of 2
    await expect.poll(async () => (await store.user('ann'))?.unreadCount).toBe(1)
    await s.server.sendToUser('ann', { title: 'three', body: '' }) // commits after it: 2 unread of 3
    await expect.poll(() => [x.events.notifications.length, y.events.notifications.length]).toEqual([3, 3])
    release()
    await marked

    const truth = (await store.user('ann'))!.unreadCount
    expect(truth).toBe(2)
    // Past two reads of the store would not do: the tabs are told the right count within seconds, and keep it.
    await expect.poll(() => [x.client.unreadCount, y.client.unreadCount], { timeout: 10_000 }).toEqual([truth, truth])
    await holds(() => expect([x.client.unreadCount, y.client.unreadCount]).toEqual([truth, truth]), 1000)
  })
})

describe('PostgresStore: acks gathered and written together', () => {
  // Acks on PostgreSQL gather for 50 ms and one statement writes them (store/batch.ts). Meanwhile a
  // user's counters are read with the ack taken but not yet written (`withUnwrittenAck`): "a
  // connection made meanwhile starts after it, as it would once written". A second, older ack of the
  // same user (a stale one from another tab) that comes while the first is being written must not
  // hide it: the cursor read is the highest ack taken, as the write will leave it.

  it('reads the highest ack taken while an ack is being written and an older one waits', async () => {
    const s = schema()
    const store = await PostgresStore.open(db.url, { schema: s })
    for (let i = 1; i <= 10; i++) await store.publish({ userIds: ['ann'] }, { title: `n${i}`, body: '' })
    const holder = new pg.Client(db.url)
    const watcher = new pg.Client(db.url)
    await holder.connect()
    await watcher.connect()
    try {
      // A publish to ann in progress: her row is locked, so the ack's write waits for it.
      await holder.query('BEGIN')
      await holder.query(`SELECT 1 FROM ${s}.users WHERE id = 'ann' FOR UPDATE`)
      const first = store.ack('ann', 10) // the tab that was sent everything
      await waitingForLock(watcher, 'acked_seq')
      const second = store.ack('ann', 5) // a stale ack from another tab, while the first is being written
      // A connection made now starts after the highest ack taken, as it will once both are written.
      expect((await store.user('ann'))?.ackedSeq).toBe(10)
      expect((await store.touchUser('ann')).ackedSeq).toBe(10)
      await holder.query('COMMIT')
      expect(await first).toBe(10)
      expect(await second).toBe(10)
      expect((await store.user('ann'))?.ackedSeq).toBe(10)
    } finally {
      await holder.query('ROLLBACK').catch(() => {})
      await holder.end()
      await watcher.end()
      await store.close()
    }
  }, 30_000)

  // An ack taken before a read of the counters began counts in it however the two round trips end: also when
  // the ack's write commits after the read's snapshot but its reply is handled before the read's (the write is
  // then no longer unwritten when the read ends, and not in what the read saw).
  for (const read of ['touchUser', 'user'] as const) {
    it(`${read}() started while an ack taken before it is being written reads that ack, whichever reply comes first`, async () => {
      const s = schema()
      // Replies of the connection singled out wait here until released.
      const held: { chunk: Buffer; to: Proxied }[] = []
      let holding = true
      const proxy = new MarkerProxy(db.port, (chunk, to) => (holding ? held.push({ chunk, to }) : to.client.write(chunk)))
      const port = await proxy.listen()
      const store = await PostgresStore.open(`postgres://postgres@127.0.0.1:${port}/postgres`, { schema: s })
      const holder = new pg.Client(db.url)
      const watcher = new pg.Client(db.url)
      await holder.connect()
      await watcher.connect()
      try {
        for (let i = 1; i <= 10; i++) await store.publish({ userIds: ['ann'] }, { title: `n${i}`, body: '' })
        // A publish to ann in progress: her row is locked, so the ack's write waits for it.
        await holder.query('BEGIN')
        await holder.query(`SELECT 1 FROM ${s}.users WHERE id = 'ann' FOR UPDATE`)
        const acked = store.ack('ann', 10) // taken: the tab was sent everything
        await waitingForLock(watcher, 'acked_seq')
        // A connection of ann's authenticates now: its read of her counters runs before the ack commits, and its
        // reply is slow to come back.
        proxy.arm(read === 'touchUser' ? 'belfry_touch_user' : 'floor_seq AS floor')
        const counters = store[read]('ann')
        await expect.poll(() => held.length, { timeout: 10_000 }).toBeGreaterThan(0)
        // Meanwhile the ack's write commits and is answered.
        await holder.query('COMMIT')
        expect(await acked).toBe(10)
        holding = false
        for (const h of held.splice(0)) h.to.client.write(h.chunk)
        expect((await counters)?.ackedSeq).toBe(10)
      } finally {
        await holder.query('ROLLBACK').catch(() => {})
        await holder.end()
        await watcher.end()
        await store.close()
        await proxy.close()
      }
    }, 30_000)
  }
})

describe('PostgresStore: a retention pass and a held user', () => {
  // A retention pass on PostgreSQL and a user whose row another transaction holds (a long publish, a
  // transaction of a process that vanished, for up to queryTimeoutMs + 1 s). The store promises
  // (Store.prune, README "Retention") that a pass never waits for such a user: it leaves it for the
  // next pass and goes on with the others. That must hold too when the user has more entries to
  // remove than one batch's budget (pruneBatch): a retention switched on over a backlog.

  it('a pass leaves a held user whose cut spans several batches for the next pass, and prunes the others meanwhile', async () => {
    const s = schema()
    const store = await PostgresStore.open(db.url, { schema: s, pruneBatch: 2 })
    for (let i = 0; i < 5; i++) await store.publish({ userIds: ['ann', 'bob'] }, { title: `n${i}`, body: '' })
    const holder = new pg.Client(db.url)
    await holder.connect()
    let batches = 0
    let pass: Promise<number> | undefined
    try {
      // As a long publish to ann would: her counter row is locked until it commits.
      await holder.query('BEGIN')
      await holder.query(`SELECT 1 FROM ${s}.users WHERE id = 'ann' FOR UPDATE`)
      pass = (async () => {
        let removed = 0
        for (let after: number | undefined = 0; after !== undefined; batches++) {
          const batch: PruneBatch = await store.prune({ maxPerUser: 1 }, after)
          removed += batch.removed
          after = batch.next
          // The pruner's own pause between two batches (retention.ts).
          await new Promise((resolve) => (batch.removed > 0 ? setTimeout(resolve, 1) : setImmediate(resolve)))
        }
        return removed
      })()
      const outcome = await Promise.race([
        pass.then((removed) => ({ removed })),
        new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 10_000)),
      ])
      // The pass ends while ann is held, having pruned bob (4 entries) and left ann for the next pass.
      expect(outcome, `after ${batches} batches while ann was held`).toEqual({ removed: 4 })
      expect(await store.user('bob')).toMatchObject({ floor: 4 })
      expect(await store.user('ann')).toMatchObject({ floor: 0 })
    } finally {
      await holder.query('COMMIT').catch(() => {})
      await holder.end()
      // A pass still looping sees ann free and ends; then the store closes.
      await Promise.race([pass?.catch(() => 0), new Promise((r) => setTimeout(r, 5000))])
      await store.close()
    }
  }, 30_000)
})

describe('PostgresStore: retention passes on two processes', () => {
  // Retention on PostgreSQL with several processes: each runs its pruner, and "two passes at once skip
  // each other's users" (docs/architecture.md, Retention). Two batches that cut different users whose
  // inboxes hold the same notifications in a different order (fan-out jobs and topics make such inboxes)
  // must not deadlock on those notifications' counts (`refs`): a deadlock holds both batches' users
  // (and every publish to them) for PostgreSQL's deadlock_timeout before one is cancelled and rerun.

  it('two retention batches on two processes, cutting users who hold the same notifications in another order, do not deadlock', async () => {
    const s = schema()
    // fanOutBatch 1: a topic publish gives its first subscriber the entry, a job the others.
    const a = await PostgresStore.open(db.url, { schema: s, fanOutBatch: 1, pruneBatch: 2 })
    const b = await PostgresStore.open(db.url, { schema: s, fanOutBatch: 1, pruneBatch: 2 })
    const admin = new pg.Client(db.url)
    await admin.connect()
    const holder = new pg.Client(db.url)
    await holder.connect()
    const deadlocks = async () =>
      Number((await admin.query('SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()')).rows[0].deadlocks)
    try {
      // ann follows x then y; bob follows y then x: ann gets X before Y, bob Y before X.
      await a.subscribe('ann', ['x'], 10)
      await a.subscribe('bob', ['y'], 10)
      await a.subscribe('bob', ['x'], 10)
      await a.subscribe('ann', ['y'], 10)
      // A table of some size, as in production (2,000 notifications): the count update then reaches each row by its
      // index, in the order the batch lists them. carl comes after ann and bob, beyond both batches' budgets.
      for (let i = 0; i < 2000; i += 50)
        await Promise.all(Array.from({ length: 50 }, (_, j) => a.publish({ userIds: ['carl'] }, { title: `c${i + j}`, body: '' })))
      await a.publish({ topic: 'x' }, { title: 'X', body: '' })
      await a.publish({ topic: 'y' }, { title: 'Y', body: '' })
      while (await a.fanOut());
      await a.publish({ userIds: ['ann', 'bob'] }, { title: 'Z', body: '' })
      const order = async (u: string) => (await a.after(u, 0, 10)).map((n) => n.title).join('')
      expect([await order('ann'), await order('bob')]).toEqual(['XYZ', 'YXZ'])
      const { rows } = await admin.query(`SELECT no, id FROM ${s}.users ORDER BY no`)
      const [annNo] = rows.map((r) => r.no as number)
      const before = await deadlocks()
      // A moment's lock on X's row (as another batch's count update holds it): both batches meet it at their notifications.
      await holder.query('BEGIN')
      await holder.query(`SELECT 1 FROM ${s}.notifications WHERE title = 'X' FOR UPDATE`)
      // Keep 1 each: process a's batch cuts ann (its budget, 2 entries, ends there), b's starts after her and cuts bob.
      const rule = { maxPerUser: 1 }
      const pruning = Promise.all([a.prune(rule, 0), b.prune(rule, annNo!)])
      const waiting = async () =>
        (
          await admin.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%${s}.notifications%'`,
          )
        ).rows[0].n
      await expect.poll(waiting, { timeout: 10_000 }).toBe(2)
      await holder.query('COMMIT')
      const [first, second] = await pruning
      expect(first.removed + second.removed).toBe(4)
      expect(await a.user('ann')).toMatchObject({ floor: 2 })
      expect(await a.user('bob')).toMatchObject({ floor: 2 })
      // Deadlocks counted in this file's own PostgreSQL.
      expect((await deadlocks()) - before).toBe(0)
    } finally {
      await holder.end().catch(() => {})
      await admin.end()
      await a.close()
      await b.close()
    }
  })
})
