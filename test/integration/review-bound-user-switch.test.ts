/**
 * markAllRead()'s bound after the token provider switches users on one client ("ann signs out and bo
 * signs in in the same page", client.test.ts). The bound is "the highest seq the client knew of when
 * it was called, which its unread count covered", and "a client that has not been online yet knows
 * of nothing: its call marks all there is when it goes out" (README, markAllRead). Once the client
 * has taken bo's token (requests made for ann were rejected then: "the user changed"), a call goes to
 * bo's inbox, of which the client knows nothing yet: it must not carry ann's seq, which numbers
 * another inbox.
 */
import { afterEach, expect, it, vi } from 'vitest'
import type { ReadEvent } from '../../src/index.js'
import { ClientPool } from '../helpers/client.js'
import { authedClient, startServer, type TestServer } from '../helpers/server.js'

let t: TestServer | undefined
const clients = new ClientPool()

afterEach(async () => {
  clients.closeAll()
  await t?.dispose()
  t = undefined
})

it("a markAllRead made for the new user after the token provider switched users is not bounded by the last user's seq", async () => {
  t = await startServer()
  const s = t
  // bo has five unread; ann, the user signed in first, one.
  for (let i = 1; i <= 5; i++) await s.server.sendToUser('bo', { title: `for bo ${i}`, body: '' })
  await s.server.sendToUser('ann', { title: 'for ann', body: '' })
  let user = 'ann'
  const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token(user) })
  await vi.waitFor(() => expect(events.seqs()).toEqual([1]))

  // ann signs out and bo signs in in the same page; the connection drops (a deploy) and comes back as bo's.
  user = 'bo'
  let marked: Promise<ReadEvent> | undefined
  const off = client.on('status', (e) => {
    // bo's token has been taken (the auth frame is on its way): bo's page marks bo's inbox read.
    if (e.to === 'authenticating' && !marked) {
      marked = client.markAllRead()
      marked.catch(() => {})
    }
  })
  await s.restart()
  await vi.waitFor(() => expect(client.state === 'online' && marked !== undefined).toBe(true), { timeout: 5000 })
  off()
  const event = await marked!

  // bo's inbox as the server has it, through a socket of bo's own.
  const bo = await authedClient(s, 'bo')
  const success = bo.of('auth_success')[0]
  bo.close()
  expect({ event, boUnread: success?.unreadCount }).toEqual({
    event: { ids: [], all: true, seq: 5, unreadCount: 0 },
    boUnread: 0,
  })
})
