import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createStore, GET, LIST, RETAIN } from '../../src/react/store.js'
import { cleanup, createClient, note, startMockServer, tick } from '../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

// belfry's server, then the article's (a rollback), then belfry's again (rolled forward) on the same URL.
describe('belfry/react’s list after the URL’s server went back from the article’s to belfry’s', () => {
  it('lists a new belfry notification (the newest), though the list is full of the article server’s (seq 0)', async () => {
    const server = startMockServer({
      auth: (peer) =>
        peer.index === 1
          ? peer.send({ type: 'auth_success', message: 'Connected to notification service' })
          : peer.authSuccess({ seq: peer.index === 0 ? 0 : 1, pingAcks: true }),
    })
    const t = createClient(server, { backoff: () => 100 })
    const store = createStore(t.client, 3) // maxItems 3
    store[GET]()
    const release = store[RETAIN]()
    try {
      await tick()
      server.peer.send(note(1))
      await tick()
      server.peer.close(1001) // the article's server takes the URL over
      await tick(200)
      expect(server.peers).toHaveLength(2)
      for (const title of ['a', 'b', 'c']) {
        server.peer.send({ type: 'notification', title, body: '', priority: 'high', timestamp: new Date().toISOString() })
        await tick()
      }
      expect(store[0][LIST].notifications.map((n) => n.title)).toEqual(['c', 'b', 'a'])

      server.peer.close(1001) // belfry's server again
      await tick(200)
      expect(server.peers).toHaveLength(3)
      expect(t.client.state).toBe('online')
      server.peer.send(note(2, { title: 'after the rollback' }))
      await tick()
      expect(t.log.notifications.map((n) => n.title)).toContain('after the rollback') // the client handed it to the app
      // The newest notification is in the list, first, not cut at once below the article server's.
      expect(store[0][LIST].notifications.map((n) => n.title)).toContain('after the rollback')
      expect(store[0][LIST].notifications[0]?.title).toBe('after the rollback')
    } finally {
      release()
    }
  })
})
