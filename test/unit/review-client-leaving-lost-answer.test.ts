import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { cleanup, connected, createClient, startMockServer, tick } from '../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

// README, Topics: "A topic given up, taken again and given up again stays given up: the answer to the first
// `unsubscribe` does not stand for the last, and if the connection drops before the server handled the last,
// it goes out again." The client only keeps the last give-up pending if the `subscribed` answer to the
// re-subscribe in between reaches it. A drop that loses that answer (the server handled the subscribe and
// committed it, the answer and the last unsubscribe are lost with the connection) leaves nothing pending.
describe('review: a topic given up, taken again and given up again', () => {
  it('resends the last unsubscribe after the next auth when the drop loses the answer to the re-subscribe', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server, { backoff: () => 100 }))
    const stop1 = client.subscribe('a')
    await tick()
    server.peer.send({ type: 'subscribed', topics: ['a'] })
    await tick()
    stop1() // unsubscribe #1
    await tick()
    const stop2 = client.subscribe('a') // taken again (a component remounts)
    await tick()
    stop2() // unsubscribe #2: the app's last word on 'a'
    await tick()
    expect(server.peer.frames.filter((f) => f.type !== 'auth').map((f) => `${f.type} ${String(f.topics)}`)).toEqual([
      'subscribe a',
      'unsubscribe a',
      'subscribe a',
      'unsubscribe a',
    ])
    // The server answered unsubscribe #1, then handled the re-subscribe (the user is subscribed to 'a' again), and
    // the connection dropped: that `subscribed` answer and unsubscribe #2 never got across.
    server.peer.send({ type: 'unsubscribed', topics: ['a'] })
    await tick()
    server.peer.close(1006)
    await tick(200)
    expect(client.state).toBe('online')
    expect(server.peer.index).toBe(1)
    // The user is subscribed to 'a' on the server, and the app gave it up: the new connection must carry the
    // unsubscribe the last one lost. It sends nothing, and the user stays subscribed for good.
    expect(server.peer.frames.filter((f) => f.type === 'unsubscribe')).toEqual([{ type: 'unsubscribe', topics: ['a'] }])
  })
})
