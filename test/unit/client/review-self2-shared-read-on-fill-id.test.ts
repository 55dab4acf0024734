/**
 * Review: the client now handles a frame that carries a pending request's requestId but is no reply to it as any frame
 * of its type (a read change is applied). belfry/shared's follower does not: a frame carrying the requestId of its gap
 * fill's page is taken for that page's answer whatever its type, so a `read` frame so marked is dropped in silence on
 * that tab, while the leader (and every other tab) applies it.
 */
import { afterEach, beforeEach, expect, it, vi } from 'vitest'
import { memoryStorage } from '../../../src/index.js'
import { FakeChannel, FakeLocks, tabConnection } from '../../helpers/locks.js'
import { cleanup, createClient, note, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
  FakeChannel.reset()
})
afterEach(cleanup)

it('a read frame carrying the requestId of a follower’s gap-fill page is applied on that tab too, as the client does', async () => {
  const server = startMockServer({ auth: { seq: 5, unreadCount: 5 } })
  const locks = new FakeLocks()
  const leader = createClient(server, { connection: tabConnection(locks, 'a') })
  leader.client.connect()
  await tick(100)
  const storage = memoryStorage()
  storage.setItem('belfry:cursor:u1', '5')
  const follower = createClient(server, { connection: tabConnection(locks, 'b'), storage })
  follower.client.connect()
  await tick(500)
  expect(follower.client.mode).toBe('follower')
  expect(follower.client.state).toBe('online')

  // 8 comes past a gap (6, 7 lost): the follower asks the leader for them.
  server.peer.send(note(8))
  await tick(100)
  const ask = server.sent('history').at(-1)!
  expect([ask.before, ask.limit]).toEqual([9, 3])

  // A read change comes marked with that page's requestId (a server that stamps the last id it saw on its frames).
  server.peer.send({ type: 'read', ids: ['n8'], all: false, seq: 8, unreadCount: 4, requestId: ask.requestId })
  await tick(100)
  expect(leader.log.reads).toEqual([{ ids: ['n8'], all: false, seq: 8, unreadCount: 4 }])
  // Expected: the follower applies it too. Got: none (taken for the page's answer and dropped).
  expect(follower.log.reads).toHaveLength(1)
})
