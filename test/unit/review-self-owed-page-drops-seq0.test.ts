import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createStore, GET, LIST, RETAIN } from '../../src/react/store.js'
import { cleanup, connected, createClient, type Frame, note, startMockServer, tick } from '../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

// A provider given a client already online on the article's server owes the newest page; the article's
// notifications come meanwhile (seq 0, listed first). When the URL's server is belfry's again, the owed page,
// one of a longer inbox (with `next`), merges: the list should keep the article server's notifications, which
// no history page will ever bring back; it drops them as "older than the page" (0 < next).
describe('belfry/react: the owed page of a client found started on the article’s server', () => {
  it('keeps the article server’s notifications when it merges with a next page', async () => {
    const server = startMockServer({
      auth: (peer) =>
        peer.index === 0
          ? peer.send({ type: 'auth_success', message: 'Connected to notification service' })
          : peer.authSuccess({ seq: 150, pingAcks: true }),
    })
    const t = await connected(createClient(server, { backoff: () => 100 }))
    const store = createStore(t.client) // maxItems 100
    store[GET]()
    const release = store[RETAIN]()
    try {
      await tick()
      server.peer.send({ type: 'notification', title: 'from the article’s server', body: '', priority: 'high', timestamp: new Date().toISOString() })
      await tick()
      expect(store[0][LIST].notifications.map((n) => n.title)).toEqual(['from the article’s server'])

      server.peer.close(1001) // belfry's server takes the URL back
      await tick(200)
      expect(t.client.state).toBe('online')
      const h = server.peers[1]!.frames.find((f) => f.type === 'history') as Frame & { requestId: string }
      expect(h).toBeDefined()
      const items = Array.from({ length: 100 }, (_, i) => note(150 - i))
      server.peer.send({ type: 'history', items, next: 51, requestId: h.requestId })
      await tick()
      const titles = store[0][LIST].notifications.map((n) => n.title)
      expect(titles).toHaveLength(100)
      expect(titles).toContain('from the article’s server')
    } finally {
      release()
    }
  })
})
