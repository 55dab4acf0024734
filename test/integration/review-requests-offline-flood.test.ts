import { afterEach, expect, it } from 'vitest'
import { ClientPool } from '../helpers/client.js'
import { useServer } from '../helpers/server.js'

/**
 * Requests made while the connection is down wait (up to maxQueue, 100 by default) and go out after
 * auth. The client sends every one of them at once, in the tick auth_success arrives: with more than the
 * server's per-user frame burst waiting (rateBurst, 60 by default), the server closes with 4029, and at
 * each reconnect the client floods again with what is still pending, until the requests time out.
 * An app that made them slowly while offline (a user marking items read one by one on a train) never
 * came near the server's rate: the client's own flush turns them into a burst the server refuses.
 */
const start = useServer()
const clients = new ClientPool()
afterEach(() => clients.closeAll())

it('70 requests made while offline (within maxQueue) are all answered once the server is back, at the server defaults', async () => {
  const s = await start()
  const { id } = await s.server.sendToUser('ann', { title: 'hello', body: '' })
  const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token('ann'), requestTimeout: 8000 })
  await s.stop() // the connection is down (a train in a tunnel)
  await expect.poll(() => client.state).not.toBe('online')

  // Over the outage the user reads on: one markRead per item opened, a history page now and then.
  const requests: Promise<unknown>[] = []
  for (let i = 0; i < 70; i++) requests.push(i % 10 === 0 ? client.history({ limit: 5 }) : client.markRead(id))
  const outcomes = Promise.allSettled(requests)

  await s.restart()
  const settled = await outcomes
  const failed = settled.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))
  expect({ failed: failed.length, first: failed[0], closes4029: events.statuses.filter((e) => e.reason === 'close 4029').length }).toEqual({
    failed: 0,
    first: undefined,
    closes4029: 0,
  })
}, 20_000)
