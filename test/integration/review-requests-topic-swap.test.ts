import { afterEach, expect, it, vi } from 'vitest'
import { ClientPool } from '../helpers/client.js'
import { useServer } from '../helpers/server.js'

/**
 * An app at the user's subscription limit swaps one topic for another in one task (a route change:
 * one component unmounts and its stop() runs, the next mounts and subscribes). The app gave one up
 * before taking the other, so the user never holds more than the limit: the new topic must be
 * subscribed. The client sends the task's `subscribe` frame before its `unsubscribe` frame, so the
 * server (which handles a connection's frames in order) sees one topic too many and refuses it.
 */
const start = useServer()
/** The topic frames of a task go out at its end: a request made in a later task follows them, and its reply follows theirs. */
const handled = async (client: { history(p: { limit: number }): Promise<unknown> }) => {
  await new Promise((resolve) => setTimeout(resolve, 0))
  await client.history({ limit: 1 })
}
const clients = new ClientPool()
afterEach(() => clients.closeAll())

it('giving a topic up and subscribing another in one task, at maxSubscriptionsPerUser, subscribes the new one', async () => {
  const s = await start({ limits: { maxSubscriptionsPerUser: 2 } })
  const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token('ann') })
  const stopA = client.subscribe('a')
  client.subscribe('b')
  await handled(client) // frames are handled in order: both subscribes are done
  expect(events.errors).toEqual([])

  // One task: 'a' given up first, then 'c' taken.
  stopA()
  client.subscribe('c')
  await handled(client) // the task's topic frames are answered

  expect(events.errors.map((e) => e.message)).toEqual([])
  expect((await s.server.publish('c', { title: 'for c', body: '' })).recipients).toBe(1)
  expect((await s.server.publish('a', { title: 'not for ann', body: '' })).recipients).toBe(0)
  await vi.waitFor(() => expect(events.notifications.map((n) => n.title)).toEqual(['for c']))
})

it('the same swap made while offline is refused at the restore after the next auth (subscribes go out before unsubscribes)', async () => {
  const s = await start({ limits: { maxSubscriptionsPerUser: 2 } })
  const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token('ann') })
  const stopA = client.subscribe('a')
  client.subscribe('b')
  await handled(client)
  await s.stop()
  await expect.poll(() => client.state).not.toBe('online')
  stopA()
  client.subscribe('c')
  await s.restart() // same database: the user holds a and b
  await vi.waitFor(() => expect(events.count('online')).toBe(2))
  await handled(client)

  expect(events.errors.filter((e) => e.name === 'ProtocolError').map((e) => e.message)).toEqual([])
  expect((await s.server.publish('c', { title: 'for c', body: '' })).recipients).toBe(1)
})
