import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { FakeChannel, FakeLocks, tabConnection } from '../../helpers/locks.js'
import { cleanup, createClient, type Frame, outcome, startMockServer, tick } from '../../helpers/mock-server.js'

/**
 * d701e40 made live-only mode "the article server's connection's mode, not the URL's (requests made while
 * reconnecting wait for the next server)" — docs/protocol.md, "belfry's client against the article's server":
 * "For that connection the client works in a live-only mode"; README: requests reject "not supported by an
 * article-protocol server". Link.legacy is now true only while online; belfry/shared's connection still says
 * `!!snap.legacy` (the last online's kind) in every state, so with sharedConnection() the same request is
 * rejected at once, before any server was reached. README ("belfry/shared"): every tab keeps its own client;
 * sharing the socket changes nothing else the app sees.
 */

beforeEach(() => {
  vi.useFakeTimers()
  FakeChannel.reset()
})
afterEach(cleanup)

describe('belfry/shared: live-only mode belongs to the article server’s connection', () => {
  it('a history() made while the leader reconnects after the article’s server goes to the belfry server reached next', async () => {
    const server = startMockServer({
      auth: (peer) =>
        peer.index === 0
          ? peer.send({ type: 'auth_success', message: 'Connected to notification service' })
          : peer.authSuccess({ seq: 3, unreadCount: 1, pingAcks: true }),
    })
    const locks = new FakeLocks()
    const { client } = createClient(server, { connection: tabConnection(locks, 'a'), backoff: () => 100 })
    client.connect()
    await tick(100)
    expect(client.mode).toBe('leader')
    expect(client.state).toBe('online')
    server.peer.close(1006) // the article's server is replaced by belfry's on the same URL
    await tick()
    expect(client.state).toBe('reconnecting')

    const page = outcome(client.history({ limit: 5 }))
    await tick(200)
    expect(client.state).toBe('online')
    expect(server.peers).toHaveLength(2)
    expect(page.error).toBeUndefined()
    const h = server.peers[1]!.frames.find((f) => f.type === 'history') as Frame | undefined
    expect(h).toMatchObject({ type: 'history', limit: 5 })
  })
})
