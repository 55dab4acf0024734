import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { cleanup, connected, createClient, startMockServer, tick } from '../helpers/mock-server.js'

/**
 * README/protocol.md: subscribe() "returns the function that unsubscribes (now, and after each auth until the
 * server answers)"; a subscription belongs to the user and outlives the connection in belfry's store. Against the
 * article's server "subscribe() and the function it returns send nothing" — for that connection. When the same URL
 * answers with belfry's server again (a migration, a rollback), the topic given up while on the article's server
 * must be unsubscribed at the next belfry auth: otherwise the stored subscription lives on and the user keeps
 * getting the topic's notifications.
 */

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

describe('a topic given up while online on the article’s server', () => {
  it('is unsubscribed at the next auth on belfry’s server', async () => {
    // belfry's server, then the article's (the same URL), then belfry's again.
    const server = startMockServer({
      auth: (peer) =>
        peer.index === 1
          ? peer.send({ type: 'auth_success', message: 'Connected to notification service' })
          : peer.authSuccess({ seq: 0, pingAcks: true }),
    })
    const { client } = await connected(createClient(server, { backoff: () => 100 }))
    const stop = client.subscribe('deploys')
    await tick()
    expect(server.peers[0]!.frames.filter((f) => f.type === 'subscribe')).toEqual([{ type: 'subscribe', topics: ['deploys'] }])
    // belfry's server stores the subscription (the mock answers nothing: no reply needed here).

    server.peer.close(1001) // belfry's server replaced by the article's on the same URL
    await tick(200)
    expect(client.state).toBe('online')
    expect(server.peers).toHaveLength(2)

    stop() // the user gives the topic up while on the article's server: nothing can be sent there
    await tick()
    expect(server.peers[1]!.frames.map((f) => f.type)).toEqual(['auth'])

    server.peer.close(1001) // back to belfry's server
    await tick(200)
    expect(client.state).toBe('online')
    expect(server.peers).toHaveLength(3)
    const third = server.peers[2]!.frames
    // The give-up reaches the server that keeps the subscription.
    expect(third.filter((f) => f.type === 'unsubscribe').flatMap((f) => f.topics as string[])).toContain('deploys')
    expect(third.filter((f) => f.type === 'subscribe').flatMap((f) => f.topics as string[])).not.toContain('deploys')
  })
})
