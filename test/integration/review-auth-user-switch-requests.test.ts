import { afterEach, expect, it, vi } from 'vitest'
import { ClientPool } from '../helpers/client.js'
import { authedClient, useServer } from '../helpers/server.js'

/**
 * README: "a token provider that switches users switches cursors with it", and the client leaves the
 * last user's topics behind on such a switch (notification-client.ts #auth). Its requests are not:
 * one the app made for the last user that waits for the connection (or was in flight when it
 * dropped) is sent again after the next auth, which is the new user's. `markAllRead()` asked while
 * ann was signed in marks all of bo's inbox read.
 */
const start = useServer()
const clients = new ClientPool()
afterEach(() => clients.closeAll())

it("a markAllRead() made for the last user is not applied to the next user's inbox after the token provider switches users", async () => {
  const s = await start()
  await s.server.sendToUser('bo', { title: 'for bo 1', body: '' })
  await s.server.sendToUser('bo', { title: 'for bo 2', body: '' })
  let user = 'ann'
  const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token(user), connectTimeout: 500 })

  // The connection drops (a deploy, the network); ann's page asks to mark all read meanwhile.
  await s.stop()
  await vi.waitFor(() => expect(client.state).not.toBe('online'))
  const marked = client.markAllRead().then(
    (e) => ({ resolved: e }),
    (e: unknown) => ({ rejected: e }),
  )
  // ann signs out and bo signs in in the same page: the provider now yields bo's token.
  user = 'bo'
  await s.restart()
  await vi.waitFor(() => expect(client.state).toBe('online'), { timeout: 5000 })
  const outcome = await Promise.race([marked, new Promise((r) => setTimeout(() => r('pending'), 1000))])

  // bo's inbox as the server has it, through a socket of bo's own.
  const bo = await authedClient(s, 'bo')
  const success = bo.of('auth_success')[0]
  bo.close()
  expect({ boUnread: success?.unreadCount, readEvents: events.reads.length }).toEqual({ boUnread: 2, readEvents: 0 })
  expect(outcome).not.toHaveProperty('resolved')
})
