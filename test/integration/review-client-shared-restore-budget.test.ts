import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { memoryStorage, NotificationClient } from '../../src/index.js'
import { sharedConnection } from '../../src/shared/index.js'
import { FAST_BACKOFF, holds, type Recorder, record } from '../helpers/client.js'
import { FakeLocks } from '../helpers/locks.js'
import { useServer } from '../helpers/server.js'

const start = useServer()
const open: NotificationClient[] = []
afterEach(() => {
  for (const c of open.splice(0)) c.close()
})

describe('review: belfry/shared tabs restoring their topics over one socket', () => {
  it('three tabs of a user following 1,000 topics (the server allows 1,000) stay online', async () => {
    const t = await start({ limits: { maxSubscriptionsPerUser: 1000 } })
    const locks = new FakeLocks()
    const topics = Array.from({ length: 1000 }, (_, i) => `t${i}`)
    const tabs: { client: NotificationClient; events: Recorder }[] = []
    for (let i = 0; i < 3; i++) {
      const client = new NotificationClient({
        url: t.wsUrl,
        token: () => t.token('ann'),
        WebSocket,
        backoff: FAST_BACKOFF,
        storage: memoryStorage(),
        connection: sharedConnection({ beat: 50, stale: 200, locks: locks.forTab(`tab${i}`), BroadcastChannel }),
      })
      open.push(client)
      const events = record(client)
      // Each tab of the app follows the same topics (subscribed before it connects: sent by the restore after auth).
      for (const topic of topics) client.subscribe(topic)
      client.connect()
      await client.ready({ timeout: 5000 })
      tabs.push({ client, events })
    }
    // Every tab restores its 1,000 topics through the leader's socket: 25 frames each at 40 a frame
    // (2 each at the protocol's 500), against the user's frame budget of 60 (rateBurst).
    await holds(() => {
      const cuts = tabs.flatMap(({ events }) => events.statuses.filter((s) => s.reason === 'close 4029'))
      expect(cuts, 'the shared socket was cut for its frame budget (4029)').toEqual([])
    }, 3000)
  })
})
