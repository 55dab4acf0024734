import { afterEach, describe, expect, it } from 'vitest'
import { ClientPool, holds } from '../helpers/client.js'
import { useServer } from '../helpers/server.js'

const start = useServer()
const clients = new ClientPool()
afterEach(() => clients.closeAll())

describe('review: unsubscribing many topics at once', () => {
  it('an app that drops the 100 topics it subscribed in one task (a page or component unmounting) stays online', async () => {
    const t = await start()
    const { client, events } = await clients.online({ url: t.wsUrl, token: () => t.token('ann') })
    const offs = Array.from({ length: 100 }, (_, i) => client.subscribe(`topic-${i}`))
    // The subscribe went out in 3 frames (40 a frame); let the user's frame budget (rateBurst 60) fill again.
    await new Promise((r) => setTimeout(r, 3500))
    expect(client.state).toBe('online')
    // One task, as subscribe() batches: the unsubscribes of one task should not cost the budget one frame each.
    for (const off of offs) off()
    await holds(() => {
      const closes = events.statuses.filter((s) => s.from === 'online').map((s) => s.reason)
      expect(closes, 'the server cut the socket for its frame budget').toEqual([])
    }, 1500)
  })
})
