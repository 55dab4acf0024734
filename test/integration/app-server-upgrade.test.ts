/**
 * belfry attached to an app's own HTTP server (`server` option) and an upgrade on a path that is not
 * belfry's. Once any 'upgrade' listener exists, Node hands such a request to the 'upgrade' listeners
 * alone, never to the request handler, and the socket is out of the server's timeouts: an app with no
 * WebSocket endpoint of its own would never see it. belfry leaves it to the app only when the app has
 * an 'upgrade' listener of its own; else it refuses it (404), as on its own server.
 */
import { createServer, type Server } from 'node:http'
import { type AddressInfo, connect, type Socket } from 'node:net'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { NotificationServer } from '../../src/server/index.js'
import { API_KEY, exchange, SECRET } from '../helpers/server.js'

const UPGRADE = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'

let http: Server | undefined
let belfry: NotificationServer | undefined
/** Every socket the app's server accepted: the test ends those the server leaves behind itself. */
const accepted = new Set<Socket>()
afterEach(async () => {
  await belfry?.close()
  for (const socket of accepted) socket.destroy()
  accepted.clear()
  await new Promise((resolve) => http?.close(resolve))
})

/** An app with tight timeouts of its own and no WebSocket endpoint: every request gets its answer. */
async function app(): Promise<number> {
  http = createServer(
    { headersTimeout: 1000, requestTimeout: 1000, keepAliveTimeout: 500, connectionsCheckingInterval: 200 },
    (_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('the app'),
  )
  http.on('connection', (socket: Socket) => accepted.add(socket.once('close', () => accepted.delete(socket))))
  await new Promise<void>((resolve) => http!.listen(0, '127.0.0.1', resolve))
  return (http.address() as AddressInfo).port
}

/** Attaches belfry to the app's server; `listeners`: the 'upgrade' listeners there then (belfry's and the app's). */
async function attach(listeners = 1): Promise<void> {
  belfry = new NotificationServer({
    secret: SECRET,
    apiKey: API_KEY,
    database: ':memory:',
    server: http!,
    logger: pino({ level: 'silent' }),
  })
  await belfry.ready()
  expect(http!.listenerCount('upgrade')).toBe(listeners) // 1: belfry's alone, the app has none
}

describe("an app's own server with belfry attached, and no 'upgrade' listener of its own", () => {
  it('answers an upgrade on a path no one serves (404) and ends its socket, within the app’s timeouts', async () => {
    const port = await app()

    // Before belfry: the app answers the request, and its keep-alive timeout ends the socket.
    const before = await exchange(connect(port, '127.0.0.1'), UPGRADE('/chat'), 3000)
    expect(before.answer).toMatch(/^HTTP\/1\.1 200 /)
    expect(before.closed).toBe(true)

    await attach()
    // With belfry attached: the same request must still get an answer (the app's, or a refusal) and its
    // socket must end within the app's timeouts (1 s) and some slack, not stay open, silent, for ever.
    const after = await exchange(connect(port, '127.0.0.1'), UPGRADE('/chat'), 3000)
    expect({ answered: after.answer.split('\r\n')[0], closed: after.closed }).toEqual({ answered: 'HTTP/1.1 404 Not Found', closed: true })
  })

  it('keeps none of the sockets of peers that sent such an upgrade and went away', async () => {
    const port = await app()
    await attach()
    for (let i = 0; i < 20; i++) {
      const socket = connect(port, '127.0.0.1')
      socket.on('error', () => {})
      socket.write(UPGRADE('/chat'))
      await new Promise((resolve) => setTimeout(resolve, 20))
      socket.destroy() // the peer is gone
    }
    const open = () => new Promise<number>((resolve, reject) => http!.getConnections((error, n) => (error ? reject(error) : resolve(n))))
    await expect.poll(open, { timeout: 3000, message: 'server sockets left behind by peers that are gone' }).toBe(0)
  })
})

describe("an app's own server with belfry attached, and an 'upgrade' listener of its own", () => {
  it('leaves an upgrade on another path to the app', async () => {
    const port = await app()
    http!.on('upgrade', (_req, socket) => {
      socket.end('HTTP/1.1 426 Upgrade Required\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
    })
    await attach(2)
    const answer = await exchange(connect(port, '127.0.0.1'), UPGRADE('/chat'), 3000)
    expect(answer.answer.split('\r\n')[0]).toBe('HTTP/1.1 426 Upgrade Required')
  })
})
