import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { memoryStorage, NotificationClient } from '../../src/index.js'
import { sharedConnection } from '../../src/shared/index.js'
import { FAST_BACKOFF, type Recorder, record } from '../helpers/client.js'
import { FakeLocks } from '../helpers/locks.js'
import { useServer } from '../helpers/server.js'

const start = useServer()
const open: NotificationClient[] = []
afterEach(() => {
  for (const c of open.splice(0)) c.close()
})

describe('review: belfry/shared, a leader whose token provider hangs', () => {
  it('hands the lock on, as one whose provider fails does, so a tab whose provider works leads', async () => {
    const t = await start()
    const locks = new FakeLocks()
    let hang = false
    const tab = (id: string, token: () => Promise<string>): { client: NotificationClient; events: Recorder } => {
      const client = new NotificationClient({
        url: t.wsUrl,
        token,
        WebSocket,
        backoff: FAST_BACKOFF,
        connectTimeout: 300,
        storage: memoryStorage(),
        connection: sharedConnection({ beat: 50, stale: 200, locks: locks.forTab(id), BroadcastChannel }),
      })
      open.push(client)
      return { client, events: record(client) }
    }
    // Tab 1 leads; its token fetch answers once (the tab joins ann's group), then hangs (a stalled request).
    const one = tab('tab1', () => (hang ? new Promise<string>(() => {}) : t.token('ann')))
    one.client.connect()
    await one.client.ready({ timeout: 5000 })
    expect(one.client.mode).toBe('leader')
    const two = tab('tab2', () => t.token('ann'))
    two.client.connect()
    await expect.poll(() => two.client.state, { timeout: 5000 }).toBe('online')
    // The leader's socket drops; its next token call never settles.
    hang = true
    await t.restart()
    await expect.poll(() => one.events.statuses.some((s) => s.from === 'online'), { timeout: 5000 }).toBe(true)
    await expect
      .poll(() => one.events.errors.map((e) => e.message), { timeout: 5000 })
      .toContain('url or token provider did not answer within connectTimeout')
    // Tab 2's provider works: README, "A leader whose token provider fails ... hands the lock on, so a tab
    // whose provider works leads". A provider that never answers is reported (connectTimeout) and retried
    // on the same call for ever: tab 1 keeps the lock and the user's tabs stay offline.
    await expect.poll(() => [one.client.state, two.client.state], { timeout: 6000 }).toContain('online')
  })
})
