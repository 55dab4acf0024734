import { afterEach, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import { type CursorStorage, NotificationClient } from '../../src/index.js'
import { sharedConnection } from '../../src/shared/index.js'
import { FAST_BACKOFF, type Recorder, range, record } from '../helpers/client.js'
import { FakeLocks } from '../helpers/locks.js'
import { prune } from '../helpers/retention.js'
import { httpPublish, type TestServer, useServer } from '../helpers/server.js'

/**
 * Review (user switching, belfry/shared): a tab whose token provider switched from ann to bob moves
 * to bob's group and may lead it before its socket is online for bob. Until then it announces the
 * snapshot of ann's last auth_success (`snap` is not reset when the tab joins another group), and a
 * bob tab that joins meanwhile takes ann's retention floor (`oldestSeq`) as a floor for its own
 * cursor: it skips bob's notifications up to ann's floor, which it never gets.
 */
const start = useServer()
const locks = new FakeLocks()
const clients: NotificationClient[] = []
afterEach(() => {
  for (const c of clients.splice(0)) c.close()
})

/** What a browser profile's localStorage is to its tabs: one store, not volatile. */
function profileStorage(): CursorStorage {
  const map = new Map<string, string>()
  return { getItem: (k) => map.get(k) ?? null, setItem: (k, v) => void map.set(k, v) }
}

let count = 0
function openTab(s: TestServer, user: () => string, storage: CursorStorage) {
  const id = `tab${++count}`
  const groups: string[] = []
  class TabChannel extends BroadcastChannel {
    constructor(name: string) {
      super(name)
      groups.push(name)
    }
  }
  const client = new NotificationClient({
    url: s.wsUrl,
    token: () => s.token(user()),
    WebSocket,
    backoff: FAST_BACKOFF,
    storage,
    connection: sharedConnection({ beat: 50, stale: 200, locks: locks.forTab(id), BroadcastChannel: TabChannel }),
  })
  clients.push(client)
  const events: Recorder = record(client)
  client.connect()
  return { client, events, groups }
}

const publish = async (s: TestServer, from: number, to: number, user: string) => {
  for (const i of range(from, to)) expect((await httpPublish(s.url, { userId: user, title: `n${i}`, body: '' })).status).toBe(201)
}

it("a bob tab joining a tab that just switched from ann to bob gets every one of bob's notifications after its cursor, not only those past ann's retention floor", async () => {
  const s = await start()
  // ann's inbox was pruned: her floor is 7 (seqs 8..10 kept).
  await publish(s, 1, 10, 'ann')
  await prune(s, { maxPerUser: 3 })
  // bob was away: 12 notifications, of which this browser profile saw up to 2.
  await publish(s, 1, 12, 'bob')
  const storage = profileStorage()
  storage.setItem('belfry:cursor:bob', '2')

  // Tab A: ann signed in, leading her group.
  let userA = 'ann'
  const a = openTab(s, () => userA, storage)
  await a.client.ready()
  expect(a.client.mode).toBe('leader')

  // The connection drops (a deploy); meanwhile ann signs out and bob signs in in tab A (the token provider now says bob).
  await s.stop()
  userA = 'bob'
  await vi.waitFor(() => expect(a.groups.at(-1)).toMatch(/#bob$/))
  await vi.waitFor(() => expect(a.client.mode).toBe('leader'))

  // Another tab of bob's opens while tab A's socket for bob is not online yet.
  const b = openTab(s, () => 'bob', storage)
  // It heard tab A's state (its socket retrying): the leader's message, with the snapshot, reached it.
  await vi.waitFor(() => expect(b.events.statuses.some((e) => e.to === 'reconnecting')).toBe(true))

  await s.restart()
  await Promise.all([a.client.ready(), b.client.ready()])
  expect(b.client.mode).toBe('follower')
  // Tab A resumed bob from the profile's cursor (2): seqs 3..12 (after ann's 8..10).
  await vi.waitFor(() => expect(a.events.seqs().slice(-10)).toEqual(range(3, 12)), 10_000)
  // Tab B started from the same cursor (2): every seq of bob's from 3 to 12, once, in order.
  await vi.waitFor(() => expect(b.events.seqs()).toEqual(range(3, 12)), 5_000)
})
