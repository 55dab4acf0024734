import { pino } from 'pino'
import { afterEach, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import { type CursorStorage, memoryStorage, NotificationClient } from '../../src/index.js'
import { NotificationServer } from '../../src/server/index.js'
import { sharedConnection } from '../../src/shared/index.js'
import { FAST_BACKOFF, type Recorder, record } from '../helpers/client.js'
import { FakeLocks } from '../helpers/locks.js'
import { API_KEY, httpPublish, SECRET, startServer, type TestServer } from '../helpers/server.js'

/** belfry/shared in Node: Node's BroadcastChannel, a fake Web Locks manager, each "tab" a client of its own. */
const locks = new FakeLocks()
const clients: NotificationClient[] = []
const closers: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const f of closers.splice(0)) await f()
})

let n = 0
function openTab(
  url: string,
  token: () => Promise<string>,
  Channel: typeof BroadcastChannel = BroadcastChannel,
  storage: CursorStorage = memoryStorage(),
): { client: NotificationClient; events: Recorder } {
  const id = `review-tab${++n}`
  const client = new NotificationClient({
    url,
    token,
    WebSocket,
    backoff: FAST_BACKOFF,
    storage,
    connection: sharedConnection({ beat: 50, stale: 200, locks: locks.forTab(id), BroadcastChannel: Channel }),
  })
  clients.push(client)
  const events = record(client)
  client.connect()
  return { client, events }
}

const publish = async (s: { url: string }, title: string) =>
  expect((await httpPublish(s.url, { userId: 'ann', title, body: '' })).status).toBe(201)

describe('review: belfry/shared across a server that starts over on another database', () => {
  it('a follower gets the new database’s live notifications once its leader reconnects to it (the cursor starts over)', async () => {
    // The old server: the tabs get five notifications, so their cursors are 5.
    const old: TestServer = await startServer()
    closers.push(() => old.dispose())
    const leader = openTab(old.wsUrl, () => old.token('ann'))
    await leader.client.ready()
    const follower = openTab(old.wsUrl, () => old.token('ann'))
    await follower.client.ready()
    expect([leader.client.mode, follower.client.mode]).toEqual(['leader', 'follower'])
    for (let i = 1; i <= 5; i++) await publish(old, `old ${i}`)
    await vi.waitFor(() => expect(follower.events.seqs()).toEqual([1, 2, 3, 4, 5]))

    // Another database, which already holds two notifications of ann's (seqs 1 and 2).
    const other: TestServer = await startServer()
    closers.push(() => other.dispose())
    await publish(other, 'new 1')
    await publish(other, 'new 2')
    await other.stop()

    // The server at the tabs' URL starts over on that database.
    await old.stop()
    const restarted = new NotificationServer({
      secret: SECRET,
      apiKey: API_KEY,
      database: other.database,
      logger: pino({ level: 'silent' }),
    })
    closers.push(() => restarted.close())
    await restarted.listen(old.port, '127.0.0.1')
    await vi.waitFor(() => expect(follower.client.state).toBe('online'), 10_000)
    await new Promise((r) => setTimeout(r, 300)) // the follower's gap fill, if any, is over

    // seq 3 on the new database: past the server's latest at auth (2), so both tabs hand it to the app.
    await publish(old, 'new 3')
    await vi.waitFor(() => expect(leader.events.notifications.map((x) => x.title)).toContain('new 3'))
    await new Promise((r) => setTimeout(r, 300))
    expect(follower.events.notifications.map((x) => x.title)).toContain('new 3')
  })
})

describe('review: belfry/shared and a message lost between tabs', () => {
  it('a follower that missed the last notification the leader relayed gets it without waiting for another one', async () => {
    const s: TestServer = await startServer()
    closers.push(() => s.dispose())
    const leader = openTab(s.wsUrl, () => s.token('ann'))
    await leader.client.ready()
    /** The follower's channel loses the one message that relays seq 3 (as a frozen or busy tab may). */
    let lost = 0
    class LossyChannel extends BroadcastChannel {
      constructor(name: string) {
        super(name)
        this.addEventListener('message', (e) => {
          const m = (e as MessageEvent).data as { f?: { type: string; seq?: number } }
          if (m.f?.type === 'notification' && m.f.seq === 3 && !lost++) e.stopImmediatePropagation()
        })
      }
    }
    const follower = openTab(s.wsUrl, () => s.token('ann'), LossyChannel)
    await follower.client.ready()
    for (let i = 1; i <= 3; i++) await publish(s, `n${i}`)
    await vi.waitFor(() => expect(leader.events.seqs()).toEqual([1, 2, 3]))
    // The leader's beats (every 50 ms) say its latest seq is 3: a second is twenty of them.
    await new Promise((r) => setTimeout(r, 1000))
    expect(lost).toBe(1)
    expect(follower.events.seqs()).toEqual([1, 2, 3])
    expect(follower.client.unreadCount).toBe(3)
  })
})

describe('review: belfry/shared and close() from a notification handler', () => {
  it('a follower closed by its handler mid-batch does not move its stored cursor past what the app was handed', async () => {
    const s: TestServer = await startServer()
    closers.push(() => s.dispose())
    const leader = openTab(s.wsUrl, () => s.token('ann'))
    await leader.client.ready()
    for (let i = 1; i <= 6; i++) await publish(s, `n${i}`)
    await vi.waitFor(() => expect(leader.events.seqs()).toEqual([1, 2, 3, 4, 5, 6]))
    // A tab that last saw seq 1 joins: it fills 2..6 from one history page, in order.
    const stored = memoryStorage()
    stored.setItem('belfry:cursor:ann', '1')
    const follower = openTab(s.wsUrl, () => s.token('ann'), BroadcastChannel, stored)
    // The app closes the client once it has been handed seq 3 (a sign-out, a page leaving).
    follower.client.on('notification', (n) => {
      if (n.seq === 3) follower.client.close()
    })
    await vi.waitFor(() => expect(follower.client.state).toBe('closed'), 5000)
    await new Promise((r) => setTimeout(r, 200))
    expect(follower.events.seqs()).toEqual([2, 3])
    // The next page load resumes after 3: 4, 5 and 6 were never handed to the app.
    expect(stored.getItem('belfry:cursor:ann')).toBe('3')
  })
})
