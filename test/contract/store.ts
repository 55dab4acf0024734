/**
 * The contract every `Store` keeps (src/server/store/store.ts), as one suite
 * that any implementation runs against: `storeContract('SqliteStore', harness)`.
 * It speaks only through the interface, so a new store needs nothing else to
 * be checked. Store-specific tests (atomicity against a failing write, the
 * raw tables) live beside each store's own test file.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  IdempotencyKeyReusedError,
  type PruneBatch,
  type RetentionRule,
  type Store,
  type UnreadChange,
} from '../../src/server/store/store.js'

/** Options every store takes, for the tests. */
export interface StoreTestOptions {
  /** Most inbox entries one transaction makes (small, to make fan-out jobs with few users). */
  fanOutBatch?: number
  /** Most inbox entries one retention batch removes (small, to make passes of several batches). */
  pruneBatch?: number
}

export interface StoreHarness {
  /** A store on a fresh, empty database. */
  open(options?: StoreTestOptions): Promise<Store>
  /** Another store on the same data: after a restart, or another process's, while this one lives. */
  reopen(options?: StoreTestOptions): Promise<Store>
  /** Removes the database. */
  dispose(): Promise<void>
}

const note = (title: string) => ({ title, body: `body of ${title}` })
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
const tick = () => new Promise((resolve) => setTimeout(resolve, 5))

/** Runs a whole retention pass, batch after batch; resolves with the sums and the batches. */
export async function prunePass(
  store: Store,
  rule: RetentionRule,
): Promise<Omit<PruneBatch, 'next' | 'unreadChanges'> & { batches: number; unreadChanges: UnreadChange[] }> {
  const total = { removed: 0, unread: 0, users: 0, notifications: 0, batches: 0, unreadChanges: [] as UnreadChange[] }
  let after: number | undefined = 0
  while (after !== undefined) {
    const batch: PruneBatch = await store.prune(rule, after)
    total.removed += batch.removed
    total.unread += batch.unread
    total.users += batch.users
    total.notifications += batch.notifications
    total.unreadChanges.push(...(batch.unreadChanges ?? []))
    total.batches++
    after = batch.next
  }
  return total
}

export function storeContract(name: string, makeHarness: () => Promise<StoreHarness>): void {
  let harness: StoreHarness
  let store: Store
  const opened: Store[] = []

  beforeEach(async () => {
    harness = await makeHarness()
    store = await harness.open()
    opened.push(store)
  })
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close()
    await harness.dispose()
  })

  const seqsOf = async (userId: string) => (await store.after(userId, 0, 10_000)).map((n) => n.seq)
  /** The inbox holds floor + 1 … latest without a gap, and the unread counter equals its unread entries. */
  const expectUnreadConsistent = async (users: readonly string[]) => {
    for (const u of users) {
      const state = await store.touchUser(u)
      const rows = await store.after(u, 0, 10_000)
      expect(
        rows.map((n) => n.seq),
        u,
      ).toEqual(range(state.floor + 1, state.latestSeq))
      expect(state.unreadCount, u).toBe(rows.filter((n) => !n.read).length)
    }
  }

  describe(`${name}: sequence numbers`, () => {
    it('keeps a gap-free per-user seq across interleaved publishes to different users', async () => {
      const published: Record<string, number[]> = { a: [], b: [], c: [] }
      const audiences = [['a'], ['b'], ['a', 'b'], ['c'], ['a', 'c'], ['b'], ['a', 'b', 'c'], ['a']]
      for (let round = 0; round < 5; round++) {
        for (const userIds of audiences) {
          const { deliveries } = await store.publish({ userIds }, note(`${round}:${userIds.join()}`))
          expect(deliveries.map((d) => d.userId).sort()).toEqual([...userIds].sort())
          for (const d of deliveries) published[d.userId]!.push(d.seq)
        }
      }
      for (const [user, seqs] of Object.entries(published)) {
        expect(seqs, user).toEqual(range(1, seqs.length))
        expect(await seqsOf(user), user).toEqual(seqs)
        expect((await store.touchUser(user)).latestSeq).toBe(seqs.length)
      }
    })

    it('numbers publishes started together without gaps, each user’s seqs in commit order', async () => {
      const results = await Promise.all(range(1, 50).map((i) => store.publish({ userIds: i % 2 ? ['a', 'b'] : ['a'] }, note(`n${i}`))))
      const seqsA = results.flatMap((r) => r.deliveries.filter((d) => d.userId === 'a').map((d) => d.seq))
      expect([...seqsA].sort((x, y) => x - y)).toEqual(range(1, 50))
      expect(await seqsOf('a')).toEqual(range(1, 50))
      expect(await seqsOf('b')).toEqual(range(1, 25))
    })

    it('counts a user listed twice in userIds once', async () => {
      const { deliveries } = await store.publish({ userIds: ['a', 'a', 'b', 'a'] }, note('dup'))
      expect([...deliveries].sort((x, y) => x.userId.localeCompare(y.userId))).toEqual([
        { userId: 'a', seq: 1 },
        { userId: 'b', seq: 1 },
      ])
      expect(await seqsOf('a')).toEqual([1])
    })
  })

  describe(`${name}: fan-out`, () => {
    it('writes one inbox entry per known user for a broadcast, sharing one notification', async () => {
      await store.touchUser('a')
      await store.touchUser('b')
      await store.publish({ userIds: ['c'] }, note('direct'))
      const { notification, deliveries } = await store.publish({ broadcast: true }, note('all'))
      expect([...deliveries].sort((x, y) => x.userId.localeCompare(y.userId))).toEqual([
        { userId: 'a', seq: 1 },
        { userId: 'b', seq: 1 },
        { userId: 'c', seq: 2 },
      ])
      for (const user of ['a', 'b', 'c']) {
        const [last] = await store.history(user, undefined, 1)
        expect(last).toMatchObject({ id: notification.id, title: 'all', read: false })
      }
      expect(await seqsOf('never-seen')).toEqual([])
    })

    it('writes a topic publish to subscribers only, with the topic set; unsubscribing stops it', async () => {
      await store.subscribe('a', ['news'], 100)
      await store.subscribe('b', ['news'], 100)
      await store.subscribe('b', ['news'], 100) // twice is once
      await store.subscribe('b', ['sport'], 100)
      await store.touchUser('c')
      const { notification, deliveries } = await store.publish({ topic: 'news' }, note('headline'))
      expect(notification.topic).toBe('news')
      expect(deliveries.map((d) => d.userId).sort()).toEqual(['a', 'b'])
      expect(await store.after('a', 0, 10)).toMatchObject([{ id: notification.id, topic: 'news', seq: 1 }])
      expect(await seqsOf('c')).toEqual([])
      await store.unsubscribe('b', ['news'])
      await store.unsubscribe('b', ['never-subscribed'])
      const second = await store.publish({ topic: 'news' }, note('later'))
      expect(second.deliveries).toEqual([{ userId: 'a', seq: 2 }])
      expect((await store.publish({ topic: 'sport' }, note('match'))).deliveries).toEqual([{ userId: 'b', seq: 2 }])
      // A topic nobody follows: no one to give it to, so nothing is stored (retention could never remove it).
      expect(await store.publish({ topic: 'empty' }, note('void'))).toMatchObject({ deliveries: [], recipients: 0, pending: false })
    })

    it('answers a publish to an empty list of users with no entry and 0 recipients, with a key as well', async () => {
      // Regression: PostgresStore stored a notification no inbox held, then threw.
      expect(await store.publish({ userIds: [] }, note('no one'))).toMatchObject({ deliveries: [], recipients: 0, pending: false })
      const key = { key: 'none', ttlMs: 60_000 }
      const first = await store.publish({ userIds: [] }, note('no one'), key)
      expect(first).toMatchObject({ deliveries: [], recipients: 0, pending: false })
      expect(await store.publish({ userIds: [] }, note('no one'), key)).toMatchObject({
        notification: { id: first.notification.id },
        recipients: 0,
        replayed: true,
      })
    })
  })

  describe(`${name}: fan-out jobs`, () => {
    const users = (n: number) => Array.from({ length: n }, (_, i) => `u${String(i).padStart(3, '0')}`)
    /** Every user's entries of the notification `id`. */
    const entriesOf = async (id: string, of: readonly string[]) =>
      (await Promise.all(of.map(async (u) => (await store.after(u, 0, 1000)).filter((n) => n.id === id).length))).reduce((a, b) => a + b, 0)

    it('fans a broadcast larger than a batch out: the first batch in the publish, the rest by fanOut(), everyone once', async () => {
      await store.close()
      store = await harness.reopen({ fanOutBatch: 10 })
      opened.push(store)
      for (const u of users(25)) await store.touchUser(u)
      const published = await store.publish({ broadcast: true }, note('big'))
      expect(published).toMatchObject({ recipients: 25, pending: true })
      expect(published.deliveries).toHaveLength(10)
      const batches = [published.deliveries.length]
      for (let batch = await store.fanOut(); batch; batch = await store.fanOut()) {
        expect(batch.notification).toEqual(published.notification)
        batches.push(batch.deliveries.length)
        if (batch.done) expect(await store.fanOut()).toBeUndefined()
      }
      expect(batches).toEqual([10, 10, 5])
      expect(await entriesOf(published.notification.id, users(25))).toBe(25)
      for (const u of users(25)) expect((await store.touchUser(u)).latestSeq, u).toBe(1)
    })

    it('fans a topic out to its subscribers as they were at the publish; a later user or subscriber is not in it', async () => {
      await store.close()
      store = await harness.reopen({ fanOutBatch: 4 })
      opened.push(store)
      for (const u of users(10)) await store.subscribe(u, ['news'], 10)
      await store.touchUser('bystander')
      const published = await store.publish({ topic: 'news' }, note('headline'))
      expect(published).toMatchObject({ recipients: 10, pending: true })
      await store.subscribe('late', ['news'], 10)
      await store.touchUser('newcomer')
      while (await store.fanOut());
      expect(await entriesOf(published.notification.id, users(10))).toBe(10)
      expect(await entriesOf(published.notification.id, ['late', 'newcomer', 'bystander'])).toBe(0)
      const broadcast = await store.publish({ broadcast: true }, note('all'))
      while (await store.fanOut());
      expect(await entriesOf(broadcast.notification.id, [...users(10), 'late', 'newcomer', 'bystander'])).toBe(13)
    })

    it('leaves a pending job to any other store on the same data (a restart, another process): each user gets one entry', async () => {
      await store.close()
      store = await harness.reopen({ fanOutBatch: 5 })
      opened.push(store)
      for (const u of users(12)) await store.touchUser(u)
      const published = await store.publish({ broadcast: true }, note('left'))
      expect(published.pending).toBe(true)
      await store.close() // before any fanOut(): as if the process died
      const other = await harness.reopen({ fanOutBatch: 5 })
      opened.push(other)
      store = other
      let batches = 0
      while (await store.fanOut()) batches++
      expect(batches).toBe(2)
      expect(await entriesOf(published.notification.id, users(12))).toBe(12)
      // Publishes to the same users meanwhile keep every user's seqs gap-free.
      await store.publish({ userIds: users(12) }, note('after'))
      for (const u of users(12))
        expect(
          (await store.after(u, 0, 10)).map((n) => n.seq),
          u,
        ).toEqual([1, 2])
    })

    it('says the latest seq and unread count of each user asked about', async () => {
      await store.publish({ userIds: ['a', 'b'] }, note('one'))
      const { notification } = await store.publish({ userIds: ['a'] }, note('two'))
      await store.markRead('a', [notification.id])
      expect(await store.latestSeqs(['a', 'b', 'nobody'])).toEqual(
        new Map([
          ['a', { seq: 2, unreadCount: 1 }],
          ['b', { seq: 1, unreadCount: 1 }],
        ]),
      )
      expect(await store.latestSeqs([])).toEqual(new Map())
    })
  })

  describe(`${name}: idempotency keys`, () => {
    const DAY = 86_400_000
    const keyed = (key: string, ttlMs = DAY) => ({ key, ttlMs })
    const titles = async (userId: string) => (await store.after(userId, 0, 100)).map((n) => n.title)

    it('stores a publish once per key: the same request again gets the first answer and stores nothing', async () => {
      const first = await store.publish({ userIds: ['a', 'b'] }, note('once'), keyed('k1'))
      expect(first.replayed).toBeUndefined()
      expect(first.deliveries).toHaveLength(2)
      const again = await store.publish({ userIds: ['b', 'a', 'a'] }, note('once'), keyed('k1'))
      expect(again).toEqual({ notification: first.notification, deliveries: [], recipients: 2, pending: false, replayed: true })
      expect(await titles('a')).toEqual(['once'])
      expect(await titles('b')).toEqual(['once'])
      expect((await store.touchUser('a')).latestSeq).toBe(1)
      // Without a key, or with another, a publish is new.
      await store.publish({ userIds: ['a'] }, note('once'))
      await store.publish({ userIds: ['a'] }, note('once'), keyed('k2'))
      expect(await titles('a')).toEqual(['once', 'once', 'once'])
    })

    it('refuses a key used for a different request, and stores nothing for it', async () => {
      await store.publish({ userIds: ['a'] }, note('first'), keyed('k'))
      await expect(store.publish({ userIds: ['a'] }, note('second'), keyed('k'))).rejects.toThrow(IdempotencyKeyReusedError)
      await expect(store.publish({ userIds: ['b'] }, note('first'), keyed('k'))).rejects.toThrow(IdempotencyKeyReusedError)
      await expect(store.publish({ userIds: ['a'] }, { ...note('first'), priority: 'high' }, keyed('k'))).rejects.toThrow(
        IdempotencyKeyReusedError,
      )
      expect(await titles('a')).toEqual(['first'])
      expect(await store.user('b')).toBeUndefined()
    })

    it('stores one notification for publishes with one key started together, and answers each alike', async () => {
      await store.subscribe('s', ['news'], 10)
      const direct = await Promise.all(range(1, 8).map(() => store.publish({ userIds: ['a', 'b'] }, note('race'), keyed('r1'))))
      const topic = await Promise.all(range(1, 8).map(() => store.publish({ topic: 'news' }, note('race'), keyed('r2'))))
      for (const results of [direct, topic]) {
        expect(new Set(results.map((r) => r.notification.id)).size).toBe(1)
        expect(results.filter((r) => !r.replayed)).toHaveLength(1)
      }
      expect(await titles('a')).toEqual(['race'])
      expect(await titles('b')).toEqual(['race'])
      expect(await titles('s')).toEqual(['race'])
      expect(topic.map((r) => r.recipients)).toEqual(range(1, 8).map(() => 1))
    })

    it('replays a broadcast, a fan-out job’s publish and one to no one as first answered', async () => {
      const fanning = await harness.reopen({ fanOutBatch: 2 })
      opened.push(fanning)
      for (const u of ['a', 'b', 'c']) await fanning.touchUser(u)
      const big = await fanning.publish({ broadcast: true }, note('all'), keyed('b1'))
      expect(big).toMatchObject({ recipients: 3, pending: true })
      while (await fanning.fanOut());
      expect(await fanning.publish({ broadcast: true }, note('all'), keyed('b1'))).toMatchObject({
        notification: big.notification,
        recipients: 3,
        pending: false,
        deliveries: [],
        replayed: true,
      })
      const none = await fanning.publish({ topic: 'nobody' }, note('unheard'), keyed('b2'))
      expect(await fanning.publish({ topic: 'nobody' }, note('unheard'), keyed('b2'))).toMatchObject({
        notification: { id: none.notification.id },
        recipients: 0,
        replayed: true,
      })
      for (const u of ['a', 'b', 'c']) expect(await titles(u), u).toEqual(['all'])
    })

    it('forgets a key once it expires: the key may then be used again, for any request', async () => {
      await store.publish({ userIds: ['a'] }, note('old'), keyed('e', 1))
      await tick()
      const reused = await store.publish({ userIds: ['a'] }, note('new'), keyed('e'))
      expect(reused.replayed).toBeUndefined()
      expect(await store.publish({ userIds: ['a'] }, note('new'), keyed('e'))).toMatchObject({ replayed: true })
      expect(await titles('a')).toEqual(['old', 'new'])
    })
  })

  describe(`${name}: subscriptions`, () => {
    it('subscribes to several topics at once, lists them, and refuses those past the cap', async () => {
      expect(await store.subscribe('a', ['t1', 't2', 't1'], 3)).toEqual([])
      expect(await store.subscribe('a', ['t2', 't3', 't4', 't5'], 3)).toEqual(['t4', 't5'])
      expect((await store.topics('a')).sort()).toEqual(['t1', 't2', 't3'])
      // Holding the cap, a topic already held is no refusal.
      expect(await store.subscribe('a', ['t3'], 3)).toEqual([])
      await store.unsubscribe('a', ['t1', 't2', 'never'])
      expect(await store.subscribe('a', ['t4', 't5', 't6'], 3)).toEqual(['t6'])
      expect((await store.topics('a')).sort()).toEqual(['t3', 't4', 't5'])
      expect(await store.topics('nobody')).toEqual([])
    })
  })

  describe(`${name}: health`, () => {
    it('passes its check while it takes writes', async () => {
      await expect(store.check()).resolves.toBeUndefined()
    })
  })

  describe(`${name}: read state`, () => {
    it('marks ids read in the given user’s inbox only', async () => {
      await store.touchUser('a')
      await store.touchUser('b')
      const shared = await store.publish({ broadcast: true }, note('shared'))
      const own = await store.publish({ userIds: ['a'] }, note('own'))
      const change = await store.markRead('a', [shared.notification.id, own.notification.id])
      expect(change).toEqual({
        ids: expect.arrayContaining([shared.notification.id, own.notification.id]),
        all: false,
        seq: 2,
        unreadCount: 0,
      })
      expect(change.ids).toHaveLength(2)
      expect((await store.after('b', 0, 10)).map((n) => n.read)).toEqual([false])
      expect((await store.touchUser('b')).unreadCount).toBe(1)
      // b cannot mark a's own notification (it is not in b's inbox).
      expect(await store.markRead('b', [own.notification.id])).toEqual({ ids: [], all: false, seq: 1, unreadCount: 1 })
      expect(await store.markRead('a', [shared.notification.id])).toEqual({ ids: [], all: false, seq: 2, unreadCount: 0 })
      await expectUnreadConsistent(['a', 'b'])
    })

    it('ignores unknown ids and marks all up to the latest seq', async () => {
      for (const i of range(1, 4)) await store.publish({ userIds: ['a'] }, note(`n${i}`))
      expect(await store.markRead('a', ['nope'])).toEqual({ ids: [], all: false, seq: 4, unreadCount: 4 })
      expect(await store.markRead('a', 'all')).toEqual({ ids: [], all: true, seq: 4, unreadCount: 0, upTo: 4 })
      expect((await store.after('a', 0, 10)).every((n) => n.read)).toBe(true)
      expect(await store.markRead('nobody', 'all')).toEqual({ ids: [], all: true, seq: 0, unreadCount: 0, upTo: 0 })
      expect(await store.markRead('nobody', 'all', 3)).toEqual({ ids: [], all: true, seq: 0, unreadCount: 0, upTo: 0 })
    })

    it('marks all up to a bound: the entries above it stay unread, and the count says so', async () => {
      for (const i of range(1, 5)) await store.publish({ userIds: ['a'] }, note(`n${i}`))
      await store.markRead('a', [(await store.after('a', 1, 1))[0]!.id]) // seq 2, read before
      expect(await store.markRead('a', 'all', 3)).toEqual({ ids: [], all: true, seq: 5, unreadCount: 2, upTo: 3 })
      const reads = async () => (await store.after('a', 0, 10)).map((n) => [n.seq, n.read])
      expect(await reads()).toEqual([
        [1, true],
        [2, true],
        [3, true],
        [4, false],
        [5, false],
      ])
      // A bound at or below what is read already changes nothing; one past the latest is the latest.
      expect(await store.markRead('a', 'all', 0)).toEqual({ ids: [], all: true, seq: 5, unreadCount: 2, upTo: 0 })
      expect(await store.markRead('a', 'all', 3)).toEqual({ ids: [], all: true, seq: 5, unreadCount: 2, upTo: 3 })
      expect(await store.markRead('a', 'all', 99)).toEqual({ ids: [], all: true, seq: 5, unreadCount: 0, upTo: 5 })
      expect((await reads()).every(([, read]) => read)).toBe(true)
      await expectUnreadConsistent(['a'])
    })

    it('keeps unread counters equal to the unread entries after a mix of publishes, reads and acks', async () => {
      const users = ['a', 'b', 'c', 'd']
      for (const u of users) await store.touchUser(u)
      await store.subscribe('a', ['t'], 100)
      await store.subscribe('c', ['t'], 100)
      const ids: Record<string, string[]> = { a: [], b: [], c: [], d: [] }
      const remember = (r: Awaited<ReturnType<Store['publish']>>) => {
        for (const d of r.deliveries) ids[d.userId]!.push(r.notification.id)
      }
      // A small deterministic pseudo-random mix.
      let x = 7
      const rand = (n: number) => {
        x = (x * 1103515245 + 12345) % 2147483648
        return x % n
      }
      for (let step = 0; step < 120; step++) {
        const op = rand(6)
        const user = users[rand(users.length)]!
        if (op === 0) remember(await store.publish({ broadcast: true }, note(`b${step}`)))
        else if (op === 1) remember(await store.publish({ topic: 't' }, note(`t${step}`)))
        else if (op === 2) remember(await store.publish({ userIds: [user, users[rand(users.length)]!] }, note(`u${step}`)))
        else if (op === 3 && ids[user]!.length > 0) {
          const pick = [ids[user]![rand(ids[user]!.length)]!, ids[user]![rand(ids[user]!.length)]!, 'unknown-id']
          const change = await store.markRead(user, pick)
          expect(change.unreadCount).toBe((await store.after(user, 0, 10_000)).filter((n) => !n.read).length)
        } else if (op === 4) {
          const form = rand(8)
          if (form === 0) await store.markRead(user, 'all')
          else if (form === 1) {
            const change = await store.markRead(user, 'all', rand(40))
            expect(change.unreadCount).toBe((await store.after(user, 0, 10_000)).filter((n) => !n.read).length)
          }
        } else if (op === 5) await store.ack(user, rand(50))
      }
      await expectUnreadConsistent(users)
    })
  })

  describe(`${name}: ack`, () => {
    it('moves the cursor forward only, never past the latest seq', async () => {
      for (const i of range(1, 3)) await store.publish({ userIds: ['a'] }, note(`n${i}`))
      expect(await store.ack('a', 2)).toBe(2)
      expect(await store.ack('a', 1)).toBe(2)
      expect(await store.ack('a', 9999)).toBe(3)
      await store.publish({ userIds: ['a'] }, note('n4'))
      expect((await store.touchUser('a')).ackedSeq).toBe(3)
      expect(await store.ack('a', 4)).toBe(4)
      expect(await store.ack('unknown', 5)).toBe(0)
    })
  })

  describe(`${name}: reading`, () => {
    beforeEach(async () => {
      for (const i of range(1, 12)) {
        await store.publish({ userIds: ['a'] }, { title: `n${i}`, body: '', priority: i % 3 === 0 ? 'high' : 'low', data: { i } })
      }
      await store.publish({ userIds: ['b'] }, note('other'))
    })

    it('after() returns seq > cursor, oldest first, up to the limit', async () => {
      expect((await store.after('a', 0, 5)).map((n) => n.seq)).toEqual([1, 2, 3, 4, 5])
      expect((await store.after('a', 5, 5)).map((n) => n.seq)).toEqual([6, 7, 8, 9, 10])
      expect((await store.after('a', 10, 5)).map((n) => n.seq)).toEqual([11, 12])
      expect(await store.after('a', 12, 5)).toEqual([])
      expect(await store.after('a', 9999, 5)).toEqual([])
      const [third] = await store.after('a', 2, 1)
      expect(third).toEqual({
        id: expect.any(String),
        seq: 3,
        title: 'n3',
        body: '',
        priority: 'high',
        timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        data: { i: 3 },
        read: false,
      })
      expect(third).not.toHaveProperty('topic')
    })

    it('history() returns seq < before, newest first, up to the limit', async () => {
      expect((await store.history('a', undefined, 5)).map((n) => n.seq)).toEqual([12, 11, 10, 9, 8])
      expect((await store.history('a', 8, 5)).map((n) => n.seq)).toEqual([7, 6, 5, 4, 3])
      expect((await store.history('a', 3, 5)).map((n) => n.seq)).toEqual([2, 1])
      expect(await store.history('a', 1, 5)).toEqual([])
      expect((await store.history('b', undefined, 50)).map((n) => n.title)).toEqual(['other'])
      const [oldest] = await store.history('a', 2, 1)
      expect(oldest).toMatchObject({ seq: 1, title: 'n1', data: { i: 1 } })
    })
  })

  describe(`${name}: durability`, () => {
    it('keeps everything across a restart, subscriptions included, and continues the seqs', async () => {
      await store.subscribe('a', ['news'], 100)
      const direct = await store.publish({ userIds: ['a', 'b'] }, { title: 'direct', body: 'x', priority: 'high', data: { k: [1, 'two'] } })
      await store.publish({ topic: 'news' }, note('topical'))
      await store.publish({ broadcast: true }, note('everyone'))
      await store.markRead('a', [direct.notification.id])
      await store.ack('a', 2)
      const before = {
        a: await store.after('a', 0, 100),
        b: await store.after('b', 0, 100),
        stateA: await store.touchUser('a'),
        stateB: await store.touchUser('b'),
      }
      await store.close()
      await store.close() // safe twice

      store = await harness.reopen()
      opened.push(store)
      expect(await store.after('a', 0, 100)).toEqual(before.a)
      expect(await store.after('b', 0, 100)).toEqual(before.b)
      expect(await store.touchUser('a')).toEqual({ latestSeq: 3, ackedSeq: 2, unreadCount: 2, floor: 0 })
      expect(await store.touchUser('b')).toEqual(before.stateB)
      expect(before.stateA).toEqual({ latestSeq: 3, ackedSeq: 2, unreadCount: 2, floor: 0 })
      expect((await store.publish({ topic: 'news' }, note('again'))).deliveries).toEqual([{ userId: 'a', seq: 4 }])
      expect((await store.publish({ userIds: ['b'] }, note('next'))).deliveries).toEqual([{ userId: 'b', seq: 3 }])
    })
  })
  // Regression: SqliteStore's touchUser() threw at once after close() ("The database connection is not open").
  it('refuses every call after close() with a rejected promise, never a throw', async () => {
    await store.touchUser('known')
    await store.close()
    const calls: Record<string, () => Promise<unknown>> = {
      'touchUser (known)': () => store.touchUser('known'),
      'touchUser (new)': () => store.touchUser('new'),
      user: () => store.user('known'),
      after: () => store.after('known', 0, 10),
    }
    for (const [what, call] of Object.entries(calls)) {
      let result: Promise<unknown> | undefined
      expect(() => {
        result = call()
      }, what).not.toThrow()
      await expect(result, what).rejects.toThrow()
    }
  })
  it('never gives a topic notification to a subscription made after it, not even one that takes the place of an ended one', async () => {
    await store.close()
    store = await harness.reopen({ fanOutBatch: 1 })
    opened.push(store)
    await store.subscribe('a', ['news'], 10)
    await store.subscribe('b', ['news'], 10)
    const published = await store.publish({ topic: 'news' }, note('before c'))
    expect(published).toMatchObject({ deliveries: [{ userId: 'a', seq: 1 }], pending: true })
    // The newest subscription ends and another begins while the job still has work.
    await store.unsubscribe('b', ['news'])
    await store.subscribe('c', ['news'], 10)
    const batches = []
    for (let batch = await store.fanOut(); batch; batch = await store.fanOut()) batches.push(...batch.deliveries)
    expect(batches).toEqual([])
    expect(await store.after('c', 0, 10)).toEqual([])
    expect((await store.publish({ topic: 'news' }, note('after c'))).deliveries).toEqual([{ userId: 'a', seq: 2 }])
    while (await store.fanOut());
    expect((await store.after('c', 0, 10)).map((n) => n.title)).toEqual(['after c'])
  })

  describe(`${name}: retention`, () => {
    const titles = async (userId: string) => (await store.after(userId, 0, 10_000)).map((n) => n.title)

    it('says a user’s counters without recording the user', async () => {
      expect(await store.user('nobody')).toBeUndefined()
      await store.publish({ broadcast: true }, note('to everyone known'))
      expect((await store.publish({ broadcast: true }, note('still nobody'))).deliveries).toEqual([])
      await store.publish({ userIds: ['a'] }, note('one'))
      expect(await store.user('a')).toEqual({ latestSeq: 1, ackedSeq: 0, unreadCount: 1, floor: 0 })
    })

    it('keeps the newest maxPerUser entries: a prefix goes, the floor rises, unread counts follow, seqs go on', async () => {
      const shared = await store.publish({ userIds: ['a', 'b'] }, note('shared'))
      for (const i of range(2, 10)) await store.publish({ userIds: ['a'] }, note(`a${i}`))
      for (const i of range(2, 3)) await store.publish({ userIds: ['b'] }, note(`b${i}`))
      const a = await store.after('a', 0, 100)
      await store.markRead('a', [a[1]!.id, a[3]!.id, a[8]!.id]) // seqs 2, 4 (going) and 9 (kept)
      expect(await prunePass(store, { maxPerUser: 4 })).toMatchObject({
        removed: 6,
        unread: 4,
        users: 1,
        notifications: 5,
        unreadChanges: [{ userId: 'a', seq: 10, unreadCount: 3 }],
      })
      expect(await store.touchUser('a')).toEqual({ latestSeq: 10, ackedSeq: 0, unreadCount: 3, floor: 6 })
      expect(await titles('a')).toEqual(['a7', 'a8', 'a9', 'a10'])
      expect((await store.history('a', undefined, 100)).map((n) => n.seq)).toEqual([10, 9, 8, 7])
      expect(await titles('b')).toEqual(['shared', 'b2', 'b3']) // b's entry keeps the shared notification
      // A pruned id is no longer in the inbox: marking it changes nothing.
      expect(await store.markRead('a', [shared.notification.id, a[2]!.id])).toEqual({ ids: [], all: false, seq: 10, unreadCount: 3 })
      expect((await store.publish({ userIds: ['a'] }, note('a11'))).deliveries).toEqual([{ userId: 'a', seq: 11 }])
      // Nothing more to remove: a second pass removes nothing.
      await store.publish({ userIds: ['a'] }, note('a12'))
      expect(await prunePass(store, { maxPerUser: 6 })).toMatchObject({ removed: 0, users: 0, notifications: 0 })
      expect(await prunePass(store, { maxPerUser: 1 })).toMatchObject({ removed: 7, users: 2, notifications: 7 })
      expect(await titles('a')).toEqual(['a12'])
      expect(await titles('b')).toEqual(['b3'])
      expect(await store.touchUser('b')).toMatchObject({ latestSeq: 3, floor: 2 })
      await expectUnreadConsistent(['a', 'b'])
    })

    it('removes the entries stored before a time, from the oldest on', async () => {
      for (const i of range(1, 3)) await store.publish({ userIds: ['a', 'b'] }, note(`old${i}`))
      await store.publish({ userIds: ['c'] }, note('old c'))
      await tick()
      const cutoff = new Date().toISOString()
      await tick()
      for (const i of range(4, 5)) await store.publish({ userIds: ['a'] }, note(`new${i}`))
      await store.publish({ userIds: ['d'] }, note('new d'))
      await store.markRead('b', 'all')
      const pass = await prunePass(store, { before: cutoff })
      expect(pass).toMatchObject({ removed: 7, unread: 4, users: 3, notifications: 4 })
      // b's were read: its count did not change, so it is not among those told.
      expect([...pass.unreadChanges].sort((x, y) => x.userId.localeCompare(y.userId))).toEqual([
        { userId: 'a', seq: 5, unreadCount: 2 },
        { userId: 'c', seq: 1, unreadCount: 0 },
      ])
      expect(await titles('a')).toEqual(['new4', 'new5'])
      expect(await titles('b')).toEqual([])
      expect(await titles('c')).toEqual([])
      expect(await titles('d')).toEqual(['new d'])
      // An inbox can be emptied: its floor is its latest seq, and the next publish follows it.
      expect(await store.touchUser('b')).toEqual({ latestSeq: 3, ackedSeq: 0, unreadCount: 0, floor: 3 })
      expect((await store.publish({ userIds: ['b'] }, note('b4'))).deliveries).toEqual([{ userId: 'b', seq: 4 }])
      // Both rules at once: whichever removes more.
      expect(await prunePass(store, { before: cutoff, maxPerUser: 1 })).toMatchObject({ removed: 1, users: 1 })
      expect(await titles('a')).toEqual(['new5'])
      await expectUnreadConsistent(['a', 'b', 'c', 'd'])
    })

    it('works in bounded batches; between two batches every inbox is a prefix with the right counts', async () => {
      await store.close()
      store = await harness.reopen({ pruneBatch: 3 })
      opened.push(store)
      for (const i of range(1, 10)) await store.publish({ userIds: ['a', 'b'] }, note(`n${i}`))
      await store.markRead(
        'a',
        (await store.after('a', 0, 3)).map((n) => n.id),
      )
      const removed: number[] = []
      let users = 0
      let after: number | undefined = 0
      while (after !== undefined) {
        const batch: PruneBatch = await store.prune({ maxPerUser: 2 }, after)
        expect(batch.removed).toBeLessThanOrEqual(3)
        removed.push(batch.removed)
        users += batch.users
        await expectUnreadConsistent(['a', 'b'])
        after = batch.next
      }
      expect(removed.reduce((x, y) => x + y, 0)).toBe(16)
      // Each user once, though its 8 entries took three batches.
      expect(users).toBe(2)
      expect(removed.length).toBeGreaterThanOrEqual(6)
      expect(await store.touchUser('a')).toEqual({ latestSeq: 10, ackedSeq: 0, unreadCount: 2, floor: 8 })
      expect(await store.touchUser('b')).toEqual({ latestSeq: 10, ackedSeq: 0, unreadCount: 2, floor: 8 })
    })

    it('keeps a notification a pending fan-out job still writes, and its entries exactly once', async () => {
      await store.close()
      store = await harness.reopen({ fanOutBatch: 2 })
      opened.push(store)
      const users = ['u1', 'u2', 'u3', 'u4', 'u5']
      for (const u of users) await store.touchUser(u)
      const published = await store.publish({ broadcast: true }, note('big'))
      expect(published.pending).toBe(true)
      await store.publish({ userIds: ['u1', 'u2'] }, note('after'))
      // The broadcast's only entries so far go: the job still needs its notification.
      expect(await prunePass(store, { maxPerUser: 1 })).toMatchObject({ removed: 2, notifications: 0 })
      for (let batch = await store.fanOut(); batch; batch = await store.fanOut()) {
        expect(batch.notification).toEqual(published.notification)
      }
      for (const u of ['u3', 'u4', 'u5']) expect(await titles(u), u).toEqual(['big'])
      expect(await titles('u1')).toEqual(['after'])
      await tick()
      expect(await prunePass(store, { before: new Date().toISOString() })).toMatchObject({ removed: 5, notifications: 2 })
      await expectUnreadConsistent(users)
    })

    it('keeps every inbox gap-free and its count right while publishes and marks run during a pass', async () => {
      const users = range(1, 8).map((i) => `p${i}`)
      for (const i of range(1, 20)) await store.publish({ userIds: users.filter((_, j) => (i + j) % 3 !== 0) }, note(`pre${i}`))
      const work = range(1, 40).map(async (i) => {
        const { notification } = await store.publish({ userIds: users.filter((_, j) => (i * j) % 4 !== 1) }, note(`live${i}`))
        if (i % 5 === 0) await store.markRead(users[i % users.length]!, [notification.id])
        if (i % 11 === 0) await store.markRead(users[(i + 3) % users.length]!, 'all')
      })
      const passes = (async () => {
        for (let p = 0; p < 4; p++) await prunePass(store, { maxPerUser: 5 })
      })()
      await Promise.all([...work, passes])
      await prunePass(store, { maxPerUser: 5 })
      for (const u of users) {
        const state = await store.touchUser(u)
        expect(state.latestSeq - state.floor, u).toBe(Math.min(5, state.latestSeq))
      }
      await expectUnreadConsistent(users)
    })
  })
}
