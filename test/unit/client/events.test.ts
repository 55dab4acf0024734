import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { BelfryError, type Notification, ProtocolError } from '../../../src/index.js'
import { cleanup, connected, createClient, note, record, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

describe('typed events', () => {
  it('on() returns a function that unsubscribes', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server))
    const a: number[] = []
    const b: number[] = []
    const offA = client.on('notification', (n) => a.push(n.seq))
    client.on('notification', (n) => b.push(n.seq))
    server.peer.send(note(1))
    offA()
    server.peer.send(note(2))
    offA() // twice is harmless
    server.peer.send(note(3))
    expect(a).toEqual([1])
    expect(b).toEqual([1, 2, 3])
  })

  it('a throwing subscriber is reported on error and the others still get the event', async () => {
    const server = startMockServer()
    const { client, log } = await connected(createClient(server))
    const boom = new Error('boom')
    const got: Notification[] = []
    client.on('notification', () => {
      throw boom
    })
    client.on('notification', (n) => got.push(n))
    server.peer.send(note(1))
    expect(got.map((n) => n.seq)).toEqual([1])
    expect(log.notifications.map((n) => n.seq)).toEqual([1])
    expect(log.errors).toHaveLength(1)
    expect(log.errors[0]).toBeInstanceOf(BelfryError)
    expect(log.errors[0]?.cause).toBe(boom)
    expect(log.errors[0]?.message).toContain('notification')
    expect(client.state).toBe('online')
  })

  it('a throwing status subscriber does not break the state machine', async () => {
    const server = startMockServer()
    const { client, log } = createClient(server)
    client.on('status', () => {
      throw new Error('bad subscriber')
    })
    client.connect()
    await tick()
    expect(client.state).toBe('online')
    expect(log.errors).toHaveLength(3) // one per transition
  })

  it('a throwing error subscriber does not loop and does not stop the other error subscribers', async () => {
    const server = startMockServer()
    const { client, log } = await connected(createClient(server))
    let calls = 0
    client.on('error', () => {
      calls++
      throw new Error('error handler broke')
    })
    server.peer.send('not json')
    expect(calls).toBe(1)
    expect(log.errors).toHaveLength(1)
  })

  // Taken, a handler that is no function (a method passed before it exists, a call's result) would be called by the
  // wrapper on each event and reported as "a … subscriber threw", a subscriber the app never wrote; on `error` it would
  // be dropped silently, with every error it was meant to hear (an AuthError that stops the client).
  it.each(['notification', 'error', 'status'] as const)(
    "on('%s') refuses a handler that is no function with a TypeError that says what it got",
    (type) => {
      const { client } = createClient(startMockServer())
      expect(() => client.on(type, undefined as never)).toThrow(new TypeError('belfry: on() takes a function; got undefined'))
      expect(() => client.on(type, 'onError' as never)).toThrow(new TypeError('belfry: on() takes a function; got "onError"'))
      expect(() => client.on(type, { handleEvent() {} } as never)).toThrow(new TypeError('belfry: on() takes a function; got object'))
      expect(() => client.on(type, () => {})()).not.toThrow()
    },
  )

  it.each([
    ['not json', 'not json'],
    ['a notification with a bad field', '{"type":"notification","title":5}'],
    ['a frame without type', '{"seq":1}'],
    ['an array', '[1,2]'],
    ['a read frame with bad ids', '{"type":"read","ids":"n1","all":false,"seq":1,"unreadCount":0}'],
  ])('%s → error event with a ProtocolError; the client stays online', async (_, text) => {
    const server = startMockServer()
    const { client, log } = await connected(createClient(server))
    server.peer.send(text)
    expect(log.errors).toHaveLength(1)
    expect(log.errors[0]).toBeInstanceOf(ProtocolError)
    expect(log.errors[0]?.name).toBe('ProtocolError')
    expect(log.notifications).toEqual([])
    await tick(1000)
    expect(client.state).toBe('online')
    server.peer.send(note(1))
    expect(log.notifications.map((n) => n.seq)).toEqual([1])
  })

  it('ignores frames of unknown type (a newer server may send more)', async () => {
    const server = startMockServer()
    const { client, log } = await connected(createClient(server))
    server.peer.send({ type: 'something_new', x: 1 })
    expect(log.errors).toEqual([])
    expect(client.state).toBe('online')
  })

  it('reports an error frame without requestId as a ProtocolError with its code', async () => {
    const server = startMockServer()
    const { log } = await connected(createClient(server))
    server.peer.send({ type: 'error', code: 'rate_limited', message: 'slow down' })
    expect(log.errors).toHaveLength(1)
    expect(log.errors[0]).toBeInstanceOf(ProtocolError)
    expect(log.errors[0]).toMatchObject({ code: 'rate_limited', message: 'slow down' })
  })

  it('after close() nothing happens: a frame still in flight is dropped, no write, no frame out, no reconnect, no timer', async () => {
    const server = startMockServer()
    const writes: string[] = []
    const storage = { getItem: () => null, setItem: (_key: string, value: string) => void writes.push(value) }
    const { client, log } = await connected(createClient(server, { storage }))
    server.peer.send(note(1))
    expect(writes).toEqual(['1'])
    const before = log.statuses.length
    client.close()
    expect(log.statuses).toHaveLength(before + 1)
    expect(log.statuses.at(-1)?.to).toBe('closed')
    // Listeners added after close() are not cleared by it: they see whatever would still be emitted.
    const late = record(client)

    // A frame in flight as the client closed (mock-socket hands it over synchronously), then the server's close.
    server.peer.send(note(2))
    server.peer.send({ type: 'error', code: 'late', message: 'after close' })
    server.peer.close(1012)
    await tick(60_000)

    expect(late).toEqual({ statuses: [], statusTimes: [], errors: [], notifications: [], reads: [], unread: [] })
    expect(log.notifications.map((n) => n.seq)).toEqual([1])
    expect(writes).toEqual(['1']) // the cursor did not move past what the app was given
    // close() sent the pending ack of seq 1, and that was the last frame: no ack of seq 2, no ping.
    expect(server.peer.frames.map((f) => f.type)).toEqual(['auth', 'ack'])
    expect(server.sent('ack')).toEqual([{ type: 'ack', seq: 1 }])
    expect(server.peers).toHaveLength(1) // no reconnect
    expect(client.state).toBe('closed')
    expect(vi.getTimerCount()).toBe(0) // no ack, ping or retry timer left behind
  })
})
