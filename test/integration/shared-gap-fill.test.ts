/**
 * belfry/shared: a follower tab that is behind fills its gap with history pages through the
 * leader's socket, asked back to back, each as the last comes. A page is a frame of the user's
 * budget (20 a second, 60 at once), but a full page frees the next page's request (docs/protocol.md,
 * "Limits"), as a replay round frees its `resume`: the catch-up is paced by the byte budget, and
 * the shared socket, every tab's, is not closed with 4029 for it.
 */
import { pino } from 'pino'
import { afterEach, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import { type CursorStorage, memoryStorage, NotificationClient } from '../../src/index.js'
import { sharedConnection } from '../../src/shared/index.js'
import { FAST_BACKOFF, range, record } from '../helpers/client.js'
import { FakeLocks } from '../helpers/locks.js'
import { type TestServer, useServer } from '../helpers/server.js'

const start = useServer()
const clients: NotificationClient[] = []
const locks = new FakeLocks()
let tabCount = 0
afterEach(() => {
  for (const c of clients.splice(0)) c.close()
})

function openTab(s: TestServer, storage: CursorStorage) {
  const id = `gap-tab${++tabCount}`
  const client = new NotificationClient({
    url: s.wsUrl,
    token: () => s.token('ann'),
    WebSocket,
    backoff: FAST_BACKOFF,
    storage,
    connection: sharedConnection({ beat: 50, stale: 200, locks: locks.forTab(id), BroadcastChannel }),
  })
  clients.push(client)
  const events = record(client)
  client.connect()
  return { client, events }
}

it('a follower filling a gap of a few thousand seqs does not get the shared socket closed with 4029', async () => {
  const s = await start({ logger: pino({ level: 'silent' }) })
  const leader = openTab(s, memoryStorage())
  await leader.client.ready()
  const N = 8000
  for (let i = 1; i <= N; i++) await s.server.sendToUser('ann', { title: `n${i}`, body: '' })
  await vi.waitFor(() => expect(leader.events.notifications).toHaveLength(N), { timeout: 60_000, interval: 100 })

  // A tab that joins behind (README's case of a gap: its stored cursor is old, as in shared.test.ts):
  // 7,980 seqs to fetch, 80 history pages.
  const behind = memoryStorage()
  behind.setItem('belfry:cursor:ann', '20')
  const late = openTab(s, behind)
  await late.client.ready()
  expect(late.client.mode).toBe('follower')
  await vi.waitFor(() => expect(late.events.seqs().at(-1)).toBe(N), { timeout: 90_000, interval: 100 })
  expect(late.events.seqs()).toEqual(range(21, N))

  // What the tabs went through meanwhile: the leader's socket closed by the server's rate limit.
  const cuts = leader.events.statuses.filter((st) => st.reason === 'close 4029')
  expect(cuts, `the shared socket was closed with 4029 ${cuts.length} times while one tab caught up`).toEqual([])
}, 180_000)
