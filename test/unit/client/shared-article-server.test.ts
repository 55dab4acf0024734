import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { FakeChannel, FakeLocks, tabConnection } from '../../helpers/locks.js'
import { cleanup, createClient, jwt, startMockServer, tick } from '../../helpers/mock-server.js'

/**
 * docs/protocol.md, "belfry's client against the article's server": "It hands each `notification` to the app
 * as it arrives"; src/client/notification-client.ts #deliver: "Every tab of the user gets the same frames in the
 * same order (one that joins later misses only those before it): each makes the same ids". README: a tab sharing
 * the socket gets what the server sends, as a solo client would.
 *
 * A follower that has joined its group (its channel open, its hello on its way) gets the leader's relayed frames
 * before the leader's answer (the state and snapshot). A belfry frame then goes to its app (it has a seq); an
 * article-server frame is taken for a belfry one — the follower's `legacy` is `!!snap.legacy` of an empty snapshot —
 * and dropped as "notification without seq" (a ProtocolError on `error`): the leader's tab shows it, this tab never.
 */

beforeEach(() => {
  vi.useFakeTimers()
  FakeChannel.reset()
})
afterEach(cleanup)

const flush = async () => {
  for (let i = 0; i < 20; i++) await Promise.resolve()
}

describe('belfry/shared on the article’s server: a tab that has just joined', () => {
  it('hands over an article-server notification relayed before the leader’s answer, as a belfry one would be', async () => {
    const server = startMockServer({ auth: (peer) => peer.send({ type: 'auth_success', message: 'Connected to notification service' }) })
    const locks = new FakeLocks()
    const leader = createClient(server, { connection: tabConnection(locks, 'a') })
    leader.client.connect()
    await tick(100)
    expect(leader.client.mode).toBe('leader')
    expect(leader.client.state).toBe('online')

    let give!: (t: string) => void
    const follower = createClient(server, {
      connection: tabConnection(locks, 'b'),
      token: () => new Promise<string>((r) => (give = r)),
    })
    follower.client.connect()
    await flush()
    give(jwt('u1'))
    await flush() // the follower's channel is open, its hello posted
    server.peer.send({ type: 'notification', title: 'Hi', body: 'from the article', timestamp: '2024-01-01T00:00:00.001Z' })
    await tick(100)

    expect(leader.log.notifications.map((n) => n.title)).toEqual(['Hi'])
    expect(follower.client.state).toBe('online')
    expect(follower.log.errors.map((e) => e.message)).toEqual([])
    expect(follower.log.notifications.map((n) => n.title)).toEqual(['Hi'])
  })
})

/**
 * d701e40 made live-only mode "the article server's connection's mode, not the URL's (requests made while
 * reconnecting wait for the next server)" — docs/protocol.md, "belfry's client against the article's server":
 * "For that connection the client works in a live-only mode"; README: requests reject "not supported by an
 * article-protocol server". Link.legacy is now true only while online; belfry/shared's connection still says
 * `!!snap.legacy` (the last online's kind) in every state, so with sharedConnection() the same request is
 * rejected at once, before any server was reached. README ("belfry/shared"): every tab keeps its own client;
 * sharing the socket changes nothing else the app sees.
 */
