import { WebSocket as MockWebSocket } from 'mock-socket'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { WebSocketServer } from 'ws'
import { type ClientOptions, memoryStorage, NotificationClient, type WebSocketLike } from '../../../src/index.js'
import { cleanup, connected, createClient, jwt, note, startMockServer, tick } from '../../helpers/mock-server.js'

afterEach(cleanup)

const WS: WebSocketLike = MockWebSocket
const base: ClientOptions = { url: 'ws://options.test/ws', token: jwt('u1'), WebSocket: WS }
/** Builds a client from options that may be wrong on purpose (as plain JavaScript callers can write them). */
const build = (options: Record<string, unknown>) => () => new NotificationClient({ ...base, ...options } as ClientOptions)

describe('options', () => {
  it('accepts the minimal options and does no I/O', () => {
    expect(() => new NotificationClient(base)).not.toThrow()
    expect(() => new NotificationClient({ ...base, url: () => 'ws://x.test', token: async () => 't', storage: false })).not.toThrow()
  })

  it.each([
    ['url', { url: undefined }],
    ['url', { url: '' }],
    ['url', { url: 42 }],
    ['token', { token: undefined }],
    ['token', { token: '' }],
    ['token', { token: { value: 't' } }],
    ['minUptime', { minUptime: -1 }],
    ['minUptime', { minUptime: '5000' }],
    ['connectTimeout', { connectTimeout: -1 }],
    ['requestTimeout', { requestTimeout: 2 ** 31 }],
    ['maxQueue', { maxQueue: -1 }],
    // Regression: a fraction was taken (1.5 let two requests wait).
    ['maxQueue', { maxQueue: 1.5 }],
    ['ackDelay', { ackDelay: -5 }],
    ['pingInterval', { pingInterval: Number.POSITIVE_INFINITY }],
    ['pongTimeout', { pongTimeout: -1 }],
    // 0 pinged in a loop (setTimeout(ping, 0) re-armed after each ping, every ping spending the user's frame budget:
    // a close with 4029 at every reconnect), and failed every attempt or request at once: these start at 1 ms.
    ['pingInterval', { pingInterval: 0 }],
    ['pongTimeout', { pongTimeout: 0 }],
    ['connectTimeout', { connectTimeout: 0 }],
    ['requestTimeout', { requestTimeout: 0 }],
    ['pingInterval', { pingInterval: 0.5 }],
    ['watchNetwork', { watchNetwork: 'yes' }],
    ['backoff', { backoff: { initial: 0 } }],
    ['backoff', { backoff: { factor: 0.5 } }],
    ['backoff', { backoff: { max: -1 } }],
    // Each of these retried in a tight 0 ms loop: the bound never reached 100 ms.
    ['backoff', { backoff: { max: 0 } }],
    ['backoff', { backoff: { initial: 1, max: 50 } }],
    ['backoff', { backoff: { initial: 0.5, factor: 1 } }],
    ['backoff', { backoff: { initial: 50, factor: 1 } }],
    ['random', { random: 0.5 }],
    ['storage', { storage: {} }],
    ['storage', { storage: { getItem: () => null } }],
    // Regressions: null was read as an object (JavaScript's own TypeError), and null storage taken for the default.
    ['backoff', { backoff: null }],
    ['storage', { storage: null }],
  ])('a bad %s throws a TypeError naming it (%o)', (name, options) => {
    expect(build(options)).toThrow(TypeError)
    expect(build(options)).toThrow(`options.${name}`)
  })

  it('WebSocket missing (Node 20 has no global WebSocket) throws a TypeError that says to pass ws', () => {
    vi.stubGlobal('WebSocket', undefined)
    expect(build({ WebSocket: undefined })).toThrow(
      new TypeError('belfry: options.WebSocket must be a WebSocket constructor (`ws` in Node 20); got undefined'),
    )
    expect(build({ WebSocket: 'ws' })).toThrow('options.WebSocket must be a WebSocket constructor (`ws` in Node 20); got "ws"')
  })

  // reconnecting-websocket would refuse these in a promise nothing handles (an unhandled rejection, which ends a
  // Node process), leaving the client connecting for ever with no error event.
  it.each([
    ['ws’s WebSocketServer', WebSocketServer],
    ['a class without the WebSocket constants', class {}],
    ['an arrow function', () => {}],
  ])('a function that is no WebSocket constructor (%s) throws a TypeError naming options.WebSocket', (_, WebSocket) => {
    expect(build({ WebSocket })).toThrow(
      new TypeError('belfry: options.WebSocket must be a WebSocket constructor (`ws` in Node 20); got function'),
    )
  })

  it.each([
    [{ url: '/ws' }, 'options.url must be a ws(s): or http(s): URL (absolute outside a page) or a function yielding one; got "/ws"'],
    [{ token: 42 }, 'options.token must be a non-empty string or a function yielding one; got 42'],
    [{ storage: {} }, 'options.storage must be false or { getItem, setItem }; got object'],
    [{ backoff: { max: 0 } }, 'options.backoff must be a function or { initial, factor, max } reaching 100 ms; got object'],
    [{ backoff: null }, 'options.backoff must be a function or { initial, factor, max } reaching 100 ms; got null'],
    [{ storage: null }, 'options.storage must be false or { getItem, setItem }; got null'],
    [{ pingInterval: 0 }, 'options.pingInterval must be a number from 1 to 2^31-1; got 0'],
    [{ ackDelay: -1 }, 'options.ackDelay must be a number from 0 to 2^31-1; got -1'],
    [{ watchNetwork: 'yes' }, 'options.watchNetwork must be a boolean; got "yes"'],
    [{ maxQueue: 1.5 }, 'options.maxQueue must be a whole number from 0 to 2^31-1; got 1.5'],
  ])('says what it got and what it expects (%o)', (options, message) => {
    expect(build(options)).toThrow(message)
  })

  it('takes an option given as undefined for one not given', () => {
    const client = new NotificationClient({ ...base, minUptime: undefined, backoff: { initial: undefined, max: undefined } })
    expect(client.state).toBe('idle')
  })

  // Regression: NaN passed `v < 0 || v >= 2 ** 31` (every comparison with NaN is false); pingInterval: NaN
  // then pinged every ~1 ms and requestTimeout: NaN timed every request out at once.
  it('no options at all (a caller without types) throws the TypeError of the first option it needs', () => {
    const make = NotificationClient as unknown as new () => NotificationClient
    expect(() => new make()).toThrow(
      new TypeError(
        'belfry: options.url must be a ws(s): or http(s): URL (absolute outside a page) or a function yielding one; got undefined',
      ),
    )
  })

  it('a NaN number option throws a TypeError naming it', () => {
    expect(build({ pingInterval: Number.NaN })).toThrow('options.pingInterval')
  })

  // Regression: a string or number backoff was spread into the default shape, which then passed the check.
  it('a backoff that is neither a function nor an object throws a TypeError naming it', () => {
    expect(build({ backoff: 'exponential' })).toThrow('options.backoff')
  })

  // Regression: the connection factory's result was used as it came; `sharedConnection` passed uncalled
  // returned a function, and the first connect() threw "connect is not a function".
  it('a connection option that does not return a connection throws a TypeError that says so', () => {
    const factory = () => () => ({})
    expect(build({ connection: factory })).toThrow(TypeError)
    expect(build({ connection: factory })).toThrow(
      'belfry: options.connection must return a connection, as sharedConnection() does; got function',
    )
    expect(build({ connection: () => undefined })).toThrow('got undefined')
  })

  it('accepts 0 for the number options where it means something (no wait, no queue), and 1 ms for the others', () => {
    expect(build({ minUptime: 0, ackDelay: 0, maxQueue: 0 })).not.toThrow()
    expect(build({ connectTimeout: 1, requestTimeout: 1, pingInterval: 1, pongTimeout: 1 })).not.toThrow()
  })

  it('refuses pingInterval: 0, which would ping in a loop: a TypeError naming it, before any connect', async () => {
    vi.useFakeTimers()
    const server = startMockServer()
    expect(() => createClient(server, { pingInterval: 0 })).toThrow(
      new TypeError('belfry: options.pingInterval must be a number from 1 to 2^31-1; got 0'),
    )
    await tick(1000)
    expect(server.sent('ping')).toHaveLength(0)
  })

  it('uses globalThis.WebSocket by default', async () => {
    vi.useFakeTimers()
    vi.stubGlobal('WebSocket', MockWebSocket)
    const server = startMockServer()
    const { client } = createClient(server, { WebSocket: undefined as unknown as WebSocketLike })
    client.connect()
    await tick()
    expect(client.state).toBe('online')
  })

  it('keeps the cursor in localStorage by default where there is one', async () => {
    vi.useFakeTimers()
    const ls = memoryStorage()
    vi.stubGlobal('localStorage', ls)
    const server = startMockServer()
    const client = new NotificationClient({ url: server.url, token: jwt('u1'), WebSocket: WS, random: () => 0.5 })
    client.connect()
    await tick()
    server.peer.send(note(4))
    expect(ls.getItem('belfry:cursor:u1')).toBe('4')
    client.close()
  })

  it('survives a localStorage that throws (blocked storage, private mode)', async () => {
    vi.useFakeTimers()
    vi.stubGlobal('localStorage', {
      getItem: () => {
        throw new Error('SecurityError')
      },
      setItem: () => {
        throw new Error('QuotaExceededError')
      },
    })
    const server = startMockServer()
    const { client, log } = await connected(createClient(server, { storage: undefined as unknown as false }))
    server.peer.send(note(1))
    server.peer.send(note(1))
    expect(log.notifications).toHaveLength(1)
    expect(client.state).toBe('online')
  })

  it('tolerates a storage that throws', async () => {
    vi.useFakeTimers()
    const server = startMockServer()
    const storage = {
      getItem: (): string | null => {
        throw new Error('denied')
      },
      setItem: () => {
        throw new Error('denied')
      },
    }
    const { client, log } = await connected(createClient(server, { storage }))
    server.peer.send(note(1))
    server.peer.send(note(2))
    expect(log.notifications.map((n) => n.seq)).toEqual([1, 2])
    expect(client.state).toBe('online')
  })
})
