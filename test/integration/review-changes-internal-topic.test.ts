/**
 * 8578af2: an authorizeSubscribe that throws keeps the user's stored subscription at auth, and
 * refuses the topic with `internal` in a subscribe. A client that reconnects while the app's check
 * throws gets its restored topic refused with `internal` and drops it as if the server had refused
 * it for good (NotificationClient #refused), although the server keeps it. The function subscribe()
 * returned then does nothing: the app cannot end a subscription that goes on delivering.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ClientPool, holds } from '../helpers/client.js'
import { useServer } from '../helpers/server.js'

const start = useServer()
const clients = new ClientPool()
afterEach(() => clients.closeAll())

/** Frames of a task go out at its end: a request made in a later task follows them, and its reply follows theirs. */
const handled = async (client: { history(p: { limit: number }): Promise<unknown> }) => {
  await new Promise((resolve) => setTimeout(resolve, 0))
  await client.history({ limit: 1 })
}

describe('a topic refused with internal (the app’s check threw) at a reconnect’s restore', () => {
  it('the app can still give it up: the function subscribe() returned ends the stored subscription', async () => {
    const failing = { on: false }
    const s = await start({
      dev: true,
      authorizeSubscribe: async () => {
        if (failing.on) throw new Error('the app’s database is away')
        return true
      },
    })
    const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token('ann') })
    const stop = client.subscribe('deploys')
    await handled(client)

    // The app's lookup fails for a moment, as the socket drops: the auth keeps 'deploys', the restore is refused with internal.
    failing.on = true
    await fetch(`${s.url}/api/dev/drop?user=ann`, { method: 'POST' })
    await vi.waitFor(() => expect(events.count('online')).toBe(2))
    await vi.waitFor(() => expect(events.errors.map((e) => e.code)).toEqual(['internal']))
    failing.on = false
    expect((await s.server.publish('deploys', { title: 'still subscribed', body: '' })).recipients).toBe(1)

    // The user leaves the page that wanted 'deploys'.
    stop()
    await handled(client)
    expect((await s.server.publish('deploys', { title: 'given up', body: '' })).recipients).toBe(0)
    await holds(() => expect(events.notifications.map((n) => n.title)).not.toContain('given up'), 300)
  })
})
