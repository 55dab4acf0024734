import net from 'node:net'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import { BelfryError, type NotificationClient } from '../../src/index.js'
import { ClientPool, holds } from '../helpers/client.js'
import { startServer, type TestServer } from '../helpers/server.js'

/**
 * Regression tests for the defects of reconnecting-websocket 4.4.0 that
 * src/client/transport.ts works around (see its header), with the real `ws`
 * in Node: #183 (an abandoned attempt crashes Node with an unhandled `error`),
 * #165 (close() while connecting leaves it stuck), PR #166 (a rejecting async
 * URL provider becomes an unhandled rejection) and its own jitter-less retry
 * timing, which must never replace ours.
 */

let t: TestServer | undefined
const clients = new ClientPool()
const cleanups: (() => Promise<void> | void)[] = []
const uncaught = vi.fn()
const unhandled = vi.fn()

beforeEach(() => {
  uncaught.mockClear()
  unhandled.mockClear()
  process.on('uncaughtException', uncaught)
  process.on('unhandledRejection', unhandled)
})

afterEach(async () => {
  clients.closeAll()
  for (const clean of cleanups.splice(0).reverse()) await clean()
  await t?.dispose()
  t = undefined
  vi.unstubAllGlobals()
  // Errors that surface on a later tick (ws emits `error` on the tick after an abort) still count.
  await new Promise((resolve) => setTimeout(resolve, 20))
  process.off('uncaughtException', uncaught)
  process.off('unhandledRejection', unhandled)
  expect(uncaught).not.toHaveBeenCalled()
  expect(unhandled).not.toHaveBeenCalled()
})

async function server(): Promise<TestServer> {
  t = await startServer()
  return t
}

/** Counts TCP connections and WebSocket upgrade requests that reach a belfry server. */
function countArrivals(s: TestServer): { connections: () => number; upgrades: () => number } {
  let connections = 0
  let upgrades = 0
  s.server.httpServer?.on('connection', () => connections++)
  s.server.httpServer?.on('upgrade', () => upgrades++)
  return { connections: () => connections, upgrades: () => upgrades }
}

/** A TCP server that accepts connections and never answers the HTTP upgrade. */
async function silentServer(): Promise<{ url: string; connections: () => number }> {
  const sockets = new Set<net.Socket>()
  let connections = 0
  const srv = net.createServer((socket) => {
    connections++
    sockets.add(socket)
    socket.on('error', () => {}) // the client resets the connection when it gives up
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()))
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        srv.close(() => resolve())
      }),
  )
  return { url: `ws://127.0.0.1:${(srv.address() as net.AddressInfo).port}/ws`, connections: () => connections }
}

/** A port nothing listens on: connections to it are refused. */
async function refusingUrl(): Promise<string> {
  const srv = net.createServer()
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()))
  const { port } = srv.address() as net.AddressInfo
  await new Promise<void>((resolve) => srv.close(() => resolve()))
  return `ws://127.0.0.1:${port}/ws`
}

/** A WebSocket server that completes every upgrade and closes at once with 4000 (retry with backoff). */
async function slammingServer(): Promise<{ url: string; connections: () => number }> {
  let connections = 0
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  wss.on('connection', (ws) => {
    connections++
    ws.on('error', () => {})
    ws.close(4000, 'go away')
  })
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()))
  cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())))
  return { url: `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/ws`, connections: () => connections }
}

/** `ws` with a hook on construction, to count sockets and to act while one is still connecting. */
function hookedWebSocket(onBuild: (ws: WebSocket) => void = () => {}): new (url: string, protocols?: string | string[]) => WebSocket {
  return class Hooked extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols)
      onBuild(this)
    }
  }
}

/** A fresh client that must connect to `s` normally. */
async function connectsFine(s: TestServer): Promise<void> {
  const { client } = clients.make({ url: s.wsUrl, token: () => s.token('zed') })
  client.connect()
  await client.ready()
  expect(client.state).toBe('online')
}

/** Stubs the browser's `window` so the client follows its online/offline events. */
function browserNetwork(): { offline(): void; online(): void } {
  const target = new EventTarget()
  vi.stubGlobal('window', target)
  return {
    offline: () => target.dispatchEvent(new Event('offline')),
    online: () => target.dispatchEvent(new Event('online')),
  }
}

describe('upstream #183: abandoning an attempt while ws is still connecting', () => {
  // Our connect timeout closes through rws.close(), which keeps reconnecting-websocket's own error
  // listener on the socket; this covers the brief's scenario. The path where upstream removes its
  // listener first (#183 proper) is the next test.
  it('times out a handshake that never completes, retries, and raises no uncaught error', async () => {
    const silent = await silentServer()
    const { client, events } = clients.make({ url: silent.url, token: 'unused', connectTimeout: 300 })
    client.connect()
    await vi.waitFor(() => expect(silent.connections()).toBeGreaterThanOrEqual(3), { timeout: 5000 })
    const timeouts = events.statuses.filter((e) => e.reason === 'connect timeout')
    expect(timeouts.length).toBeGreaterThanOrEqual(2)
    for (const e of timeouts) expect(e).toMatchObject({ from: 'connecting', to: 'reconnecting', retryIn: expect.any(Number) })
    expect(events.count('online')).toBe(0)
    expect(events.count('closed')).toBe(0)
    // And close() in the middle of such a handshake: the abort's late `error` must be swallowed too.
    await vi.waitFor(() => expect(client.state).toBe('connecting'))
    client.close()
    expect(client.state).toBe('closed')
    const seen = silent.connections()
    await holds(() => expect(silent.connections()).toBe(seen), 400)
    expect(uncaught).not.toHaveBeenCalled()
    expect(unhandled).not.toHaveBeenCalled()
    // The first failed attempt is reported (the next on the tenth), nothing else.
    expect(events.errors.map((e) => [e.name, e.message])).toEqual([['ConnectionError', `cannot connect to ${silent.url}: connect timeout`]])
  })

  it('starts over while the socket is still connecting (offline, straight back online): no uncaught error', async () => {
    // rws.reconnect() on a CONNECTING socket removes upstream's listeners, then aborts the handshake;
    // ws emits `error` on the next tick with nobody listening but the transport's permanent listener.
    const silent = await silentServer()
    const network = browserNetwork()
    const sockets: WebSocket[] = []
    const { client, events } = clients.make({
      url: silent.url,
      token: 'unused',
      connectTimeout: 300,
      WebSocket: hookedWebSocket((ws) => sockets.push(ws)),
    })
    client.connect()
    await vi.waitFor(() => expect(sockets).toHaveLength(1))
    network.offline()
    network.online()
    await vi.waitFor(() => expect(silent.connections()).toBeGreaterThanOrEqual(2))
    await vi.waitFor(() => expect(sockets[0]?.readyState).toBe(WebSocket.CLOSED))
    await new Promise((resolve) => setImmediate(resolve))
    expect(uncaught).not.toHaveBeenCalled()
    expect(client.state).toBe('connecting')
    expect(events.statuses.map((e) => e.to)).toEqual(['connecting', 'offline', 'connecting'])
  })
})

describe('upstream #165: close() while connecting', () => {
  /** Runs `closeAt` to close a fresh client at some point of its first attempt, then checks nothing reaches the server. */
  async function closedWhileConnecting(closeAt: (client: NotificationClient, hooks: { built: Promise<void> }) => Promise<void> | void) {
    const s = await server()
    const arrivals = countArrivals(s)
    let built!: () => void
    const hooks = { built: new Promise<void>((resolve) => (built = resolve)) }
    const { client, events } = clients.make({
      url: s.wsUrl,
      token: await s.token('yan'),
      WebSocket: hookedWebSocket(() => built()),
    })
    client.connect()
    await closeAt(client, hooks)
    expect(client.state).toBe('closed')
    // No socket reaches the server afterwards, the client stays closed, and no retry starts.
    await holds(() => {
      expect(client.state).toBe('closed')
      expect(arrivals.upgrades()).toBe(0)
      expect(s.server.stats().sockets).toBe(0)
    }, 500)
    expect(events.statuses.map((e) => e.to)).toEqual(['connecting', 'closed'])
    await connectsFine(s)
    return { s, arrivals }
  }

  it('right after connect(): closed, nothing reaches the server, a new client connects', async () => {
    const { arrivals } = await closedWhileConnecting((client) => client.close())
    expect(arrivals.upgrades()).toBe(1) // the new client's
  })

  it('once the socket exists but is still connecting: closed, no upgrade, a new client connects', async () => {
    await closedWhileConnecting(async (client, { built }) => {
      await built
      expect(client.state).toBe('connecting')
      client.close()
    })
  })

  // Guards the window between transport.open() and the moment reconnecting-websocket builds the attempt's
  // socket (it waits a setTimeout(0) first): there is no current socket yet, so close() must defer itself
  // (closePending) until the socket exists, and Link.#opened must ignore an open unless the state is
  // 'connecting'. Without both, the socket is built anyway, opens, and the *closed* client moves on to
  // 'authenticating' and then 'online': a zombie connection.
  it('after the URL and token resolved, before the socket is built: stays closed', async () => {
    await closedWhileConnecting(async (client) => {
      await new Promise((resolve) => setTimeout(resolve, 0))
      expect(client.state).toBe('connecting')
      client.close()
    })
  })
})

describe('upstream #165: the transport’s own close while connecting (offline), then online', () => {
  /** Goes offline at some point of the first attempt; checks the client waits, then reconnects on `online`. */
  async function offlineWhileConnecting(goOffline: (hooks: { built: Promise<void> }) => Promise<void>) {
    const s = await server()
    const arrivals = countArrivals(s)
    const network = browserNetwork()
    let built!: () => void
    const hooks = { built: new Promise<void>((resolve) => (built = resolve)) }
    const { client, events } = clients.make({
      url: s.wsUrl,
      token: await s.token('xia'),
      WebSocket: hookedWebSocket(() => built()),
    })
    client.connect()
    await goOffline(hooks)
    network.offline()
    expect(client.state).toBe('offline')
    await holds(() => {
      expect(client.state).toBe('offline')
      expect(arrivals.upgrades()).toBe(0)
    }, 400)
    network.online()
    await client.ready()
    expect(arrivals.upgrades()).toBe(1)
    expect(events.statuses.map((e) => `${e.to} (${e.reason})`)).toEqual([
      'connecting (connect)',
      'offline (offline)',
      'connecting (online)',
      'authenticating (open)',
      'online (auth)',
    ])
    return { client, events }
  }

  it('offline while the socket is connecting, then online: connects again', async () => {
    await offlineWhileConnecting(async ({ built }) => {
      await built
    })
  })

  it('offline and straight back online while the socket is connecting: connects, not stuck', async () => {
    const s = await server()
    const network = browserNetwork()
    let built!: () => void
    const first = new Promise<void>((resolve) => (built = resolve))
    const { client, events } = clients.make({
      url: s.wsUrl,
      token: await s.token('wu'),
      WebSocket: hookedWebSocket(() => built()),
    })
    client.connect()
    await first
    network.offline()
    network.online()
    await client.ready()
    expect(events.statuses.map((e) => e.to)).toEqual(['connecting', 'offline', 'connecting', 'authenticating', 'online'])
    await vi.waitFor(() => expect(s.server.stats().connections).toBe(1))
  })

  // The same window as the close() case above (before the socket is built): going offline there must
  // stop the attempt too; otherwise the client connects while 'offline' (offline → authenticating →
  // online without any 'online' event).
  it('offline after the URL and token resolved, before the socket is built: waits for online', async () => {
    await offlineWhileConnecting(async () => {
      await new Promise((resolve) => setTimeout(resolve, 0))
    })
  })
})

describe('upstream PR #166: a rejecting async URL provider', () => {
  it('reports each failure as a BelfryError, retries with backoff and gets online; no unhandled rejection', async () => {
    const s = await server()
    let calls = 0
    const failures: Error[] = []
    const { client, events } = clients.make({
      url: async () => {
        calls++
        if (calls <= 2) {
          const failure = new Error(`service discovery down (${calls})`)
          failures.push(failure)
          throw failure
        }
        return s.wsUrl
      },
      token: () => s.token('vic'),
    })
    client.connect()
    await client.ready()
    expect(calls).toBe(3)
    expect(events.errors).toHaveLength(2)
    for (const [i, error] of events.errors.entries()) {
      expect(error).toBeInstanceOf(BelfryError)
      expect(error.cause).toBe(failures[i])
    }
    const retries = events.statuses.filter((e) => e.to === 'reconnecting')
    // `attempt` counts the retries so far, this one included.
    expect(retries.map((e) => [e.attempt, typeof e.retryIn])).toEqual([
      [1, 'number'],
      [2, 'number'],
    ])
    expect(events.statuses.at(-1)).toMatchObject({ to: 'online' })
    expect(unhandled).not.toHaveBeenCalled()
  })
})

describe('retry timing is ours, not reconnecting-websocket’s (which has no jitter)', () => {
  const options = { token: 'unused', random: () => 0.5, backoff: { initial: 1000, factor: 2, max: 30_000 } }

  it('a server that closes every connection at once (4000): retryIn 500, 1000, 2000, one socket per attempt', async () => {
    const slam = await slammingServer()
    let built = 0
    const { client, events } = clients.make({ ...options, url: slam.url, WebSocket: hookedWebSocket(() => built++) })
    client.connect()
    await vi.waitFor(() => expect(events.statuses.filter((e) => e.to === 'reconnecting')).toHaveLength(3), { timeout: 4000 })
    const retries = events.statuses.filter((e) => e.to === 'reconnecting')
    expect(retries.map((e) => e.retryIn)).toEqual([500, 1000, 2000])
    expect(retries.map((e) => e.attempt)).toEqual([1, 2, 3]) // retries so far, this one included
    expect(retries.map((e) => e.reason)).toEqual(['close 4000', 'close 4000', 'close 4000'])
    expect(built).toBe(events.count('connecting'))
    expect(slam.connections()).toBe(3)
  })

  // Every refused attempt must build a socket of its own. When an attempt ends with an `error` event
  // (connection refused, DNS failure, a non-101 answer), reconnecting-websocket's own _handleError would
  // schedule a reconnect of its own (_connect → _wait), taking its connect lock; a later rws.close() then
  // leaves that lock held (upstream #165) and every later rws.reconnect() is a no-op: from the second
  // refusal on no socket is built, and the client cycles connecting → 'connect timeout' forever, even
  // after the server is back. The transport's 'error' listener (src/client/transport.ts) stops
  // reconnecting-websocket before that handler runs; this test holds it to that.
  it('a refused connection: retryIn 500, 1000, 2000 and one socket per attempt', async () => {
    const url = await refusingUrl()
    let built = 0
    const { client, events } = clients.make({ ...options, url, connectTimeout: 1000, WebSocket: hookedWebSocket(() => built++) })
    client.connect()
    await vi.waitFor(() => expect(events.statuses.filter((e) => e.to === 'reconnecting')).toHaveLength(3), { timeout: 4000 })
    const retries = events.statuses.filter((e) => e.to === 'reconnecting')
    expect(built).toBe(events.count('connecting'))
    expect(retries.map((e) => e.reason)).toEqual(['close 1006', 'close 1006', 'close 1006'])
    expect(retries.map((e) => e.retryIn)).toEqual([500, 1000, 2000])
  })
})
