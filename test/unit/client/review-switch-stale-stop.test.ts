import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { cleanup, connected, createClient, jwt, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

// README, "Delivery, exactly once": when the token provider switches users, the last user's requests are not sent
// as the new user, and "its topics are left behind, not subscribed for the new user". The function subscribe()
// returned for the last user belongs to that user's subscription (test/integration/client.test.ts: "Ann's stop,
// called late, does not end Bob's own subscription"): called late, it must not end the new user's subscription to
// a topic of the same name, nor send an unsubscribe as the new user.
describe('a user switch and the stop functions of the last user', () => {
  it("the last user's stop, called after the new user subscribed to the same topic, leaves the new user's subscription alone", async () => {
    let user = 'u1'
    const server = startMockServer()
    const { client } = await connected(createClient(server, { token: () => jwt(user), backoff: () => 100 }))
    const stopAnn = client.subscribe('all-hands')
    await tick()
    expect(server.peer.frames.filter((f) => f.type === 'subscribe')).toEqual([{ type: 'subscribe', topics: ['all-hands'] }])

    // u1 signs out and u2 in; the next connect takes u2's token.
    user = 'u2'
    server.peer.close(1006)
    await tick(100 + 20)
    expect(client.state).toBe('online')
    expect(server.peer.frames[0]).toMatchObject({ type: 'auth', userId: 'u2' })

    // u2's page follows all-hands too.
    client.subscribe('all-hands')
    await tick()
    expect(server.peer.frames.filter((f) => f.type === 'subscribe')).toEqual([{ type: 'subscribe', topics: ['all-hands'] }])

    // u1's component unmounts late and calls its stop.
    stopAnn()
    await tick()
    // Nothing is sent as u2 on u1's behalf...
    expect(server.peer.frames.filter((f) => f.type === 'unsubscribe')).toEqual([])
    // ...and u2's subscription is still the client's: restored after the next reconnect.
    server.peer.close(1006)
    await tick(100 + 20)
    expect(client.state).toBe('online')
    await tick()
    expect(server.peer.frames.filter((f) => f.type === 'subscribe' || f.type === 'unsubscribe')).toEqual([
      { type: 'subscribe', topics: ['all-hands'] },
    ])
  })
})
