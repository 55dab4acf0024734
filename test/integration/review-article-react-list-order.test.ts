import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createStore, GET, LIST, RETAIN } from '../../src/react/store.js'
import { cleanup, connected, createClient, note, startMockServer, tick } from '../helpers/mock-server.js'

/**
 * belfry/react's list (src/react/store.ts, Notifications.notifications): "What arrived since the provider mounted
 * … newest first (by `seq`), each id once, at most the provider's `maxItems`". Against the article's server every
 * seq is 0 (docs/protocol.md: "Fields that the article's frames lack get defaults: `seq: 0`"). When the URL's
 * server goes from belfry's to the article's (a rollback, a load balancer that mixes both during a migration), a
 * notification that arrives from the article's server is the newest: it must be in the list, first. It is sorted
 * below every belfry notification (seq > 0), and with the list at `maxItems` it is cut off at once: never shown.
 */

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

describe('belfry/react’s list after the URL’s server went from belfry’s to the article’s', () => {
  it('lists a notification from the article’s server first, and keeps it when the list is full', async () => {
    const server = startMockServer({
      auth: (peer) =>
        peer.index === 0
          ? peer.authSuccess({ seq: 0, pingAcks: true })
          : peer.send({ type: 'auth_success', message: 'Connected to notification service' }),
    })
    const t = createClient(server, { backoff: () => 100 })
    const store = createStore(t.client, 3) // maxItems 3
    store[GET]()
    const release = store[RETAIN]()
    try {
      await tick()
      expect(t.client.state).toBe('online')
      for (const seq of [1, 2, 3]) server.peer.send(note(seq))
      await tick()
      expect(store[0][LIST].notifications.map((n) => n.seq)).toEqual([3, 2, 1])

      server.peer.close(1001) // the article's server takes the URL over
      await tick(200)
      expect(t.client.state).toBe('online')
      expect(server.peers).toHaveLength(2)

      server.peer.send({
        type: 'notification',
        title: 'New Message',
        body: 'from the article’s server',
        priority: 'high',
        timestamp: new Date().toISOString(),
      })
      await tick()
      expect(t.log.notifications.map((n) => n.title)).toContain('New Message') // the client handed it to the app
      // The newest notification is in the list (the list was full: it must not be the one cut), first.
      expect(store[0][LIST].notifications.map((n) => n.title)).toContain('New Message')
      expect(store[0][LIST].notifications[0]?.title).toBe('New Message')
    } finally {
      release()
    }
  })
})
