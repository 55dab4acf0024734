import { afterEach, describe, expect, it, vi } from 'vitest'
import { ClientPool } from '../helpers/client.js'
import { startServer, type TestServer } from '../helpers/server.js'

/**
 * markAllRead() made while the client is away from the server waits and goes out after the next
 * auth (README, "The client"; requests.ts). What it should mark is what the user could have seen
 * when calling it; notifications published while the client was away come in that auth's replay,
 * unread, after the call.
 */

let t: TestServer | undefined
const clients = new ClientPool()

afterEach(async () => {
  clients.closeAll()
  await t?.dispose()
  t = undefined
})

describe('markAllRead() queued while away', () => {
  it('leaves unread the notifications published after the call, which the user never saw', async () => {
    const s = await startServer()
    t = s
    let away = false
    const { client, events } = await clients.online({
      url: s.wsUrl,
      // While away the provider fails: the client retries, and its requests wait.
      token: () => (away ? Promise.reject(new Error('no network')) : s.token('ann')),
    })
    await s.server.sendToUser('ann', { title: 'seen 1', body: '' })
    await s.server.sendToUser('ann', { title: 'seen 2', body: '' })
    await vi.waitFor(() => expect(events.seqs()).toEqual([1, 2]))
    expect(client.unreadCount).toBe(2)

    away = true
    await s.restart() // the socket drops; the reconnects fail at the token provider
    await vi.waitFor(() => expect(client.state).toBe('reconnecting'))

    // The user reads the two notifications on screen and clicks "mark all read".
    const marked = client.markAllRead()
    marked.catch(() => {})

    // Meanwhile two more are published, which this user has not seen.
    await s.server.sendToUser('ann', { title: 'unseen 3', body: '' })
    await s.server.sendToUser('ann', { title: 'unseen 4', body: '' })

    away = false
    const event = await marked
    await vi.waitFor(() => expect(events.seqs()).toEqual([1, 2, 3, 4]))

    // What the user saw is read; what came while it was away is still unread.
    const page = await client.history({ limit: 10 })
    expect(page.items.map((n) => [n.seq, n.read])).toEqual([
      [4, false],
      [3, false],
      [2, true],
      [1, true],
    ])
    expect(event.unreadCount).toBe(2)
    expect(client.unreadCount).toBe(2)
  })
})
