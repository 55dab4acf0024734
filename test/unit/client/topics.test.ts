import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ProtocolError } from '../../../src/index.js'
import { FakeChannel, FakeLocks, tabConnection } from '../../helpers/locks.js'
import { cleanup, connected, createClient, type Frame, jwt, startMockServer, tick } from '../../helpers/mock-server.js'
import { privateKeys } from '../../helpers/private.js'

beforeEach(() => {
  vi.useFakeTimers()
  FakeChannel.reset()
})
afterEach(cleanup)

describe('topic subscriptions', () => {
  it('sends a subscription made before connecting once, after auth', async () => {
    const server = startMockServer()
    const t = createClient(server)
    t.client.subscribe('deploys')
    await connected(t)
    await tick()
    expect(server.sent('subscribe')).toEqual([{ type: 'subscribe', topics: ['deploys'] }])
  })

  it('sends many topics in frames of at most 500 and under 64,000 bytes, at once and after each auth; refuses a topic that is not a non-empty string', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server))
    for (let i = 0; i < 1001; i++) client.subscribe(`t${i}`)
    await tick()
    expect(server.sent('subscribe').map((f) => (f as unknown as { topics: string[] }).topics.length)).toEqual([500, 500, 1])
    // Each topic counts at its worst, length × 6 + 3 bytes (`\u0001`): 41 of 256 characters fit a server's
    // maxFrameBytes (64 KiB) however JSON escapes them; the protocol's 500 may not.
    for (let i = 0; i < 83; i++) client.subscribe(`${i}`.padEnd(256, 'x'))
    await tick()
    expect(server.sent('subscribe').map((f) => (f as unknown as { topics: string[] }).topics.length)).toEqual([500, 500, 1, 41, 41, 1])
    server.peer.close(1006)
    await vi.waitFor(async () => {
      await tick(100)
      expect(client.state).toBe('online')
    })
    await tick()
    // The restore: 1,001 short topics, then 83 long ones, in the order subscribed.
    expect(server.sent('subscribe').map((f) => (f as unknown as { topics: string[] }).topics.length)).toEqual([
      500, 500, 1, 41, 41, 1, 500, 500, 42, 41, 1,
    ])
    expect(() => client.subscribe('')).toThrow(new TypeError('belfry: subscribe() takes a non-empty string; got ""'))
    expect(() => client.subscribe(7 as unknown as string)).toThrow(/non-empty string; got 7$/)
  })

  it('sends a subscription made online at once, and an unsubscribe made offline after the next auth', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server))
    const stop = client.subscribe('alerts')
    await tick()
    expect(server.sent('subscribe')).toEqual([{ type: 'subscribe', topics: ['alerts'] }])
    server.peer.close(1006)
    await tick()
    expect(client.state).toBe('reconnecting')
    stop()
    await vi.waitFor(async () => {
      await tick(100)
      expect(server.sent('unsubscribe')).toHaveLength(1)
    })
    // Not restored: it was given up while offline.
    expect(server.sent('subscribe')).toHaveLength(1)
  })

  it('restores every topic after a reconnect, 500 short ones a frame', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server, { backoff: () => 100 }))
    const topics = Array.from({ length: 501 }, (_, i) => `topic-${i}`)
    for (const topic of topics) client.subscribe(topic)
    await tick()
    server.peer.close(1006)
    await tick(200)
    expect(client.state).toBe('online')
    expect(server.peer.frames.filter((f) => f.type === 'subscribe')).toEqual([
      { type: 'subscribe', topics: topics.slice(0, 500) },
      { type: 'subscribe', topics: topics.slice(500) },
    ])
  })

  it('drops a topic the server refuses, reports it, and does not restore it', async () => {
    const server = startMockServer()
    const t = await connected(createClient(server, { backoff: () => 100 }))
    t.client.subscribe('mine')
    t.client.subscribe('tenant:other')
    await tick()
    server.peer.send({ type: 'subscribed', topics: ['mine'], refused: [{ topic: 'tenant:other', code: 'forbidden' }] })
    await tick()
    // The topic is a field of its own: an app needs not parse the message to know which.
    expect(t.log.errors.map((e) => [e.name, e.code, e instanceof ProtocolError && e.topic, e.message])).toEqual([
      ['ProtocolError', 'forbidden', 'tenant:other', 'subscription to "tenant:other" refused: forbidden'],
    ])
    server.peer.close(1006)
    await tick(200)
    expect(server.peer.frames.filter((f) => f.type === 'subscribe')).toEqual([{ type: 'subscribe', topics: ['mine'] }])
  })

  it('refuses a topic past 256 characters itself, with its topic, and sends the others', async () => {
    const server = startMockServer()
    const t = await connected(createClient(server))
    const long = 'x'.repeat(257)
    t.client.subscribe('mine')
    t.client.subscribe(long)
    await tick()
    expect(server.sent('subscribe')).toEqual([{ type: 'subscribe', topics: ['mine'] }])
    expect(t.log.errors.map((e) => [e.name, e.code, e instanceof ProtocolError && e.topic])).toEqual([
      ['ProtocolError', 'topic_too_long', long],
    ])
  })

  it('reports a malformed refusal list as a bad frame instead of throwing', async () => {
    const server = startMockServer()
    const t = await connected(createClient(server))
    server.peer.send({ type: 'subscribed', topics: [], refused: 'nope' })
    await tick()
    expect(t.log.errors.map((e) => e.name)).toEqual(['ProtocolError'])
    expect(t.client.state).toBe('online')
  })
  // Regression: the unsubscribe was a request that timed out (offline longer than requestTimeout) and was dropped.
  it('the unsubscribe function sends unsubscribe after the next auth even when the client was offline longer than requestTimeout', async () => {
    const server = startMockServer()
    const { client, log } = await connected(createClient(server, { backoff: () => 20_000 }))
    const unsubscribe = client.subscribe('t')
    await tick()
    expect(server.sent('subscribe')).toEqual([{ type: 'subscribe', topics: ['t'] }])
    server.peer.close(1006)
    await tick()
    expect(client.state).toBe('reconnecting')
    unsubscribe() // README: "it sends `unsubscribe`, now or after the next auth"
    await tick(20_000)
    expect(client.state).toBe('online')
    // The request timed out offline (10 s) and was dropped: the server keeps the user subscribed for good.
    expect(server.sent('unsubscribe')).toHaveLength(1)
    expect(log.errors.map((e) => e.name)).toEqual([])
  })

  it('sends a pending unsubscribe after each auth until the server answers unsubscribed; subscribing again cancels it', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server, { backoff: () => 100 }))
    const stopA = client.subscribe('a')
    const stopB = client.subscribe('b')
    await tick()
    stopA()
    stopB()
    await tick()
    // Given up in one task: one frame.
    expect(server.sent('unsubscribe')).toEqual([{ type: 'unsubscribe', topics: ['a', 'b'] }])
    server.peer.send({ type: 'unsubscribed', topics: ['a'] }) // b's answer is lost with the socket
    server.peer.close(1006)
    await tick(200)
    expect(client.state).toBe('online')
    expect(server.peer.frames.filter((f) => f.type === 'unsubscribe')).toEqual([{ type: 'unsubscribe', topics: ['b'] }])
    server.peer.send({ type: 'unsubscribed', topics: ['b'] })
    const stopC = client.subscribe('c')
    await tick()
    stopC()
    client.subscribe('c') // again, before the server answered the unsubscribe
    await tick()
    server.peer.close(1006)
    await tick(200)
    expect(server.peer.frames.filter((f) => f.type === 'unsubscribe')).toEqual([])
    expect(server.peer.frames.filter((f) => f.type === 'subscribe')).toEqual([{ type: 'subscribe', topics: ['c'] }])
  })

  // The server handles a connection's frames in order and answers each unsubscribe: the answer to an earlier
  // give-up of a topic (given up, taken again, given up again) is not the answer to the latest one. Only the
  // answer to the last unsubscribe sent for a topic ends its give-up, whatever answers got across before a drop
  // (the server stores a subscribe before it answers it: the drop may lose that answer too).
  it.each([
    ['the answers up to the re-subscribe got across', ['subscribed', 'unsubscribed', 'subscribed']],
    ['the answers up to the first give-up got across', ['subscribed', 'unsubscribed']],
  ] as const)('resends the last unsubscribe of a topic after the next auth when the socket drops: %s', async (_, answers) => {
    const server = startMockServer()
    const { client } = await connected(createClient(server, { backoff: () => 100 }))
    const stop1 = client.subscribe('a')
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
    for (const type of answers) server.peer.send({ type, topics: ['a'] })
    await tick()
    server.peer.close(1006)
    await tick(200)
    expect(client.state).toBe('online')
    // The new connection carries the unsubscribe the last one lost.
    expect(server.peer.index).toBe(1)
    expect(server.peer.frames.filter((f) => f.type === 'unsubscribe')).toEqual([{ type: 'unsubscribe', topics: ['a'] }])
  })

  it('takes a batch answer for its topics alone: one for other topics does not count down a topic named "undefined"', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server, { backoff: () => 100 }))
    const stop1 = client.subscribe('undefined')
    await tick()
    stop1()
    await tick()
    const stop2 = client.subscribe('undefined')
    await tick()
    stop2() // the last unsubscribe of 'undefined', which no answer has reached
    const stopB = client.subscribe('b')
    await tick()
    stopB()
    await tick()
    server.peer.send({ type: 'unsubscribed', topics: ['undefined'] }) // the first unsubscribe's answer
    server.peer.send({ type: 'unsubscribed', topics: ['b'] })
    await tick()
    server.peer.close(1006)
    await tick(200)
    expect(client.state).toBe('online')
    expect(server.peer.frames.filter((f) => f.type === 'unsubscribe')).toEqual([{ type: 'unsubscribe', topics: ['undefined'] }])
  })

  // A page open for days, online all along, that follows a topic per document, room or ticket the user opens and
  // gives it up as the user moves on keeps nothing of the topics given up and answered. Nothing public shows the
  // count of unanswered unsubscribes per topic (reset at each auth): the test reads the private field's keys.
  it('keeps nothing of 2,000 topics taken, given up and answered on one connection', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server, { backoff: () => 100 }))
    let answered = 0
    for (let i = 0; i < 2000; i++) {
      const leave = client.subscribe(`doc:${i}`)
      await tick(5)
      leave()
      await tick(5)
      // The server answers every unsubscribe as belfry's does.
      const frames = server.sent('unsubscribe') as (Frame & { topics: string[] })[]
      for (const f of frames.slice(answered)) server.peer.send({ type: 'unsubscribed', topics: f.topics })
      answered = frames.length
      await tick(5)
    }
    expect([client.state, server.peers.length]).toEqual(['online', 1])
    expect(await privateKeys(client, '#unanswered')).toEqual([])
    // Nor does it take or give up any of them again after the next auth.
    server.peer.close(1006)
    await tick(200)
    expect([client.state, server.peer.index]).toEqual(['online', 1])
    expect(server.peer.frames.map((f) => f.type)).toEqual(['auth'])
  }, 60_000)
})

/**
 * A subscription belongs to the user and outlives close() and the page (README, "Topics"): the server
 * keeps it, and topic publishes keep filling the user's inbox, until the function subscribe() returned
 * ends it. A task's topic changes go out together at its end; a change made in the task of close() (a
 * logout handler gives up the user's topics, then closes) goes out before the socket closes, as the
 * pending ack does: no later auth would send it.
 */
describe('topic changes made online in the task of close()', () => {
  it('sends the unsubscribe before the socket closes', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server))
    const stop = client.subscribe('alerts')
    await tick()
    expect(server.sent('subscribe')).toEqual([{ type: 'subscribe', topics: ['alerts'] }])
    stop()
    client.close()
    await tick()
    expect(server.sent('unsubscribe')).toEqual([{ type: 'unsubscribe', topics: ['alerts'] }])
  })

  it('sends the subscribe before the socket closes', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server))
    client.subscribe('alerts')
    client.close()
    await tick()
    expect(server.sent('subscribe')).toEqual([{ type: 'subscribe', topics: ['alerts'] }])
  })

  it('belfry/shared: a follower’s unsubscribe reaches the leader’s socket', async () => {
    const server = startMockServer()
    const locks = new FakeLocks()
    const opts = (tab: string) => ({
      connection: tabConnection(locks, tab),
    })
    const leader = createClient(server, opts('a'))
    leader.client.connect()
    await tick(100)
    const follower = createClient(server, opts('b'))
    follower.client.connect()
    await tick(100)
    expect([leader.client.mode, follower.client.mode, follower.client.state]).toEqual(['leader', 'follower', 'online'])
    const stop = follower.client.subscribe('alerts')
    await tick()
    expect(server.sent('subscribe').map((f) => f.topics)).toEqual([['alerts']])
    stop()
    follower.client.close()
    await tick()
    expect(server.sent('unsubscribe').map((f) => f.topics)).toEqual([['alerts']])
  })
})

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
