import { afterEach, beforeEach, expect, it, vi } from 'vitest'
import { cleanup, connected, createClient, startMockServer, tick } from '../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

/**
 * README (Topics): the function subscribe() returned "sends `unsubscribe` ... and again after each auth until
 * the server answers `unsubscribed`". The client clears a topic's pending unsubscribe on ANY `unsubscribed`
 * naming it, so the answer to an earlier unsubscribe of the topic (given up, taken again, given up again)
 * is taken for the answer to the latest one. When the connection drops before the server got to that latest
 * unsubscribe (the server handles a connection's frames in order: it answered the first unsubscribe and
 * then the subscribe, which subscribed the user again), the client never sends it again: the user stays
 * subscribed on the server for good, and its topic publishes keep filling the inbox the app gave up.
 */
it('an unsubscribe answered for an earlier give-up does not cancel the resend of a later one', async () => {
  const server = startMockServer()
  const { client } = await connected(createClient(server, { backoff: () => 100 }))
  const stop1 = client.subscribe('a')
  await tick()
  stop1() // unsubscribe #1
  await tick()
  const stop2 = client.subscribe('a') // taken again (a component remounts)
  await tick()
  stop2() // unsubscribe #2
  await tick()
  expect(server.peer.frames.filter((f) => f.type !== 'auth').map((f) => `${f.type} ${String(f.topics)}`)).toEqual([
    'subscribe a',
    'unsubscribe a',
    'subscribe a',
    'unsubscribe a',
  ])
  // The server answers the first two in order (the second subscribes the user again), then the socket drops
  // before it handles the last one.
  server.peer.send({ type: 'unsubscribed', topics: ['a'] })
  server.peer.send({ type: 'subscribed', topics: ['a'] })
  await tick()
  server.peer.close(1006)
  await tick(200)
  expect(client.state).toBe('online')
  // The app's last word on 'a' is "given up": the new connection must carry the unsubscribe the last one lost.
  expect(server.peer.index).toBe(1)
  expect(server.peer.frames.filter((f) => f.type === 'unsubscribe')).toEqual([{ type: 'unsubscribe', topics: ['a'] }])
})
