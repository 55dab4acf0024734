/**
 * The retention scenario of issue #17, for any store: a large seeded store
 * pruned to its limits by a running server's pruner while publishes go on.
 */
import { expect } from 'vitest'
import { memoryStorage } from '../../src/client/storage.js'
import type { ServerOptions } from '../../src/server/index.js'
import { type ClientPool, range } from './client.js'
import { API_KEY, authedClient, httpPublish, type TestServer } from './server.js'

export const DAY_MS = 86_400_000
/** Per user: the newest this many are kept (and nothing ten days old). */
export const MAX_PER_USER = 80

/** One user's counters and what its inbox holds, recounted from the tables. */
export interface InboxCount {
  id: string
  latest: number
  floor: number
  unread: number
  entries: number
  first: number | null
  last: number | null
  unreadEntries: number
}

/** The seeded store and how to look at its tables. */
export interface Seeded {
  /**
   * `users` users (ids u1…, in creation order), `perUser` entries each: user
   * uN's first N % 50 stored ten days ago, the rest an hour ago; every third
   * one read. The store prunes in small batches.
   */
  store: NonNullable<ServerOptions['store']>
  users: number
  perUser: number
  /** Every user's counts, in creation order. */
  recount(): Promise<InboxCount[]>
  /** Notifications whose refs are not the entries that hold them, or 0 (one that should be gone). */
  badRefs(): Promise<number>
  /** Users whose floor is above 0. */
  pruned(): Promise<number>
}

/** A client that resumes `userId` from `cursor`, as one that stored it would. */
export function resuming(clients: ClientPool, t: TestServer, userId: string, cursor: number) {
  const storage = memoryStorage()
  storage.setItem(`belfry:cursor:${userId}`, String(cursor))
  return clients.make({ url: t.wsUrl, token: () => t.token(userId), storage })
}

/** Runs a retention pass through the admin API; resolves with what it removed. */
export async function prune(t: TestServer, body: unknown = {}): Promise<Record<string, number>> {
  const res = await fetch(`${t.url}/api/admin/prune`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  expect(res.status).toBe(200)
  return (await res.json()) as Record<string, number>
}

/**
 * Starts a server on the seeded store with retention { days: 7, maxPerUser },
 * publishes `publishes` notifications (8 at a time) from the start, while the
 * first pass runs; then checks every inbox against a recount of the tables,
 * and that a client resuming u7 from a pruned cursor gets the hint and the
 * kept notifications exactly once.
 */
export async function pruneWhilePublishing(
  start: (options: Partial<ServerOptions>) => Promise<TestServer>,
  clients: ClientPool,
  seeded: Seeded,
  publishes: number,
): Promise<void> {
  const { users } = seeded
  const t = await start({ store: seeded.store, retention: { days: 7, maxPerUser: MAX_PER_USER } })
  let prunedAtFirstAnswer: number | undefined
  const latencies: number[] = []
  const statuses: number[] = []
  let next = 0
  const publisher = async () => {
    while (next < publishes) {
      const i = next++
      const began = performance.now()
      const { status } = await httpPublish(t.url, { userId: `u${1 + ((i * 37) % users)}`, title: `live ${i}`, body: '' })
      latencies.push(performance.now() - began)
      statuses.push(status)
      prunedAtFirstAnswer ??= await seeded.pruned()
    }
  }
  await Promise.all(range(1, 8).map(publisher))
  expect(statuses.filter((s) => s !== 201)).toEqual([])
  expect(Math.max(...latencies)).toBeLessThan(2000)
  expect(prunedAtFirstAnswer).toBeLessThan(users) // the first pass was still going
  // A pass asked for now runs after the background one: then every inbox is within the limits.
  await prune(t)

  const rows = await seeded.recount()
  expect(rows).toHaveLength(users)
  for (const [k, r] of rows.entries()) {
    const u = k + 1
    // A prefix went: the inbox is floor + 1 … latest, without a hole.
    expect(r.entries, r.id).toBe(r.latest - r.floor)
    if (r.entries > 0) expect([r.first, r.last], r.id).toEqual([r.floor + 1, r.latest])
    expect(r.unread, r.id).toBe(r.unreadEntries)
    expect(r.latest - r.floor, r.id).toBeLessThanOrEqual(MAX_PER_USER)
    expect(r.floor, r.id).toBeGreaterThanOrEqual(Math.max(u % 50, r.latest - MAX_PER_USER))
  }
  // Each notification that lost its last entry is gone with it, and refs count the entries that hold the rest.
  expect(await seeded.badRefs()).toBe(0)

  // u7 had 7 old notifications: its floor is at least perUser - MAX_PER_USER.
  const u7 = rows[6]!
  expect(u7.floor).toBeGreaterThanOrEqual(seeded.perUser - MAX_PER_USER)
  const raw = await authedClient(t, 'u7', { since: 5 })
  expect(raw.of('auth_success')[0]).toMatchObject({ seq: u7.latest, oldestSeq: u7.floor, unreadCount: u7.unread })
  expect(raw.of('notification').map((n) => n.seq)).toEqual(range(u7.floor + 1, u7.latest))
  raw.close()

  const behind = resuming(clients, t, 'u7', 5)
  behind.client.connect()
  await expect.poll(() => behind.events.notifications.length).toBe(u7.latest - u7.floor)
  expect(behind.events.statuses.find((s) => s.to === 'online')).toMatchObject({ expired: true })
  await new Promise((r) => setTimeout(r, 200))
  expect(behind.events.seqs()).toEqual(range(u7.floor + 1, u7.latest))
  // A cursor at the floor or above missed nothing: no hint.
  const current = resuming(clients, t, 'u7', u7.floor)
  current.client.connect()
  await expect.poll(() => current.events.notifications.length).toBe(u7.latest - u7.floor)
  expect(current.events.statuses.find((s) => s.to === 'online')).not.toHaveProperty('expired')
}
