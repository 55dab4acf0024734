import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { ReadEvent } from '../../../src/index.js'
import { cleanup, connected, createClient, jwt, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

// README, "The client": "A client that has not been online yet knows of nothing, nor does one whose token names
// another user until it is online for that user: its call marks all there is when it goes out." The `unread` event
// that tells the switch (count back to 0) is the first moment an app hears of the new user; a badge or an open inbox
// panel that marks all read on it must not carry the last user's seq into the new user's inbox.
describe('a user switch told on `unread`', () => {
  it('a markAllRead made in the `unread` handler that tells the switch (count 0) carries no bound of the last user', async () => {
    let user = 'u1'
    // u1's auth says latest seq 50; u2's is answered only when the test says.
    const server = startMockServer({ auth: (peer, f) => f.token === jwt('u1') && peer.authSuccess({ seq: 50, unreadCount: 4 }) })
    const { client } = await connected(createClient(server, { token: () => jwt(user), backoff: () => 100 }))
    expect(client.unreadCount).toBe(4)
    let marked: Promise<ReadEvent> | undefined
    client.on('unread', ({ count }) => {
      if (count === 0 && !marked) {
        marked = client.markAllRead()
        marked.catch(() => {})
      }
    })
    user = 'u2'
    server.peer.close(1006)
    await tick(100 + 20)
    expect(client.state).toBe('authenticating')
    expect(marked).toBeDefined()
    server.peer.authSuccess({ seq: 7, unreadCount: 1 })
    await tick()
    expect(client.state).toBe('online')
    // u1's 50 is no seq of u2's inbox: the call marks all there is, as one made a moment later does.
    expect(server.sent('mark_read').map(({ requestId: _, ...f }) => f)).toEqual([{ type: 'mark_read', all: true }])
  })
})
