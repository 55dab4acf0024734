/**
 * Review: attached to an app's own HTTP server (`server` option), belfry's 'upgrade' listener
 * returns without a word for an upgrade on any path but `/ws` and `/` (notification-server.ts,
 * #upgrade: "other paths may be the app's own WebSocket endpoints"). But once any 'upgrade'
 * listener exists, Node hands such a request to it and to no one else: an app that has no
 * WebSocket endpoint of its own (no 'upgrade' listener but belfry's) never sees it, nothing
 * answers it, and the socket, taken out of the HTTP server's hands, is under none of its
 * timeouts (headersTimeout, requestTimeout, keepAliveTimeout). One complete request then holds a
 * server socket for as long as the peer likes: a hostile client (or any web page, with
 * `new WebSocket('ws://app/x')`) piles them up at no cost. Nothing reads the socket, so even a
 * peer that has gone away leaves it behind, and the app's `server.close()` never calls back.
 */
import { createServer, type Server } from 'node:http'
import { type AddressInfo, connect, type Socket } from 'node:net'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { NotificationServer } from '../../src/server/index.js'
import { API_KEY, SECRET } from '../helpers/server.js'

const UPGRADE = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'

/** Writes `request` on a raw socket: what came back, and whether the server closed the socket within `waitMs`. */
function send(port: number, request: string, waitMs: number): Promise<{ answer: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    let answer = ''
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1')
    })
    socket.on('error', () => {})
    const timer = setTimeout(() => {
      socket.destroy()
      resolve({ answer, closed: false })
    }, waitMs)
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ answer, closed: true })
    })
    socket.write(request)
  })
}

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

async function attach(): Promise<void> {
  belfry = new NotificationServer({
    secret: SECRET,
    apiKey: API_KEY,
    database: ':memory:',
    server: http!,
    logger: pino({ level: 'silent' }),
  })
  await belfry.ready()
  expect(http!.listenerCount('upgrade')).toBe(1) // belfry's: the app has none
}

describe("an app's own server with belfry attached", () => {
  it('does not hold for ever, past all of the app’s timeouts, an upgrade on a path no one serves', async () => {
    const port = await app()

    // Before belfry: the app answers the request, and its keep-alive timeout ends the socket.
    const before = await send(port, UPGRADE('/chat'), 3000)
    expect(before.answer).toMatch(/^HTTP\/1\.1 200 /)
    expect(before.closed).toBe(true)

    await attach()
    // With belfry attached: the same request must still get an answer (the app's, or a refusal) and its
    // socket must end within the app's timeouts (1 s) and some slack, not stay open, silent, for ever.
    const after = await send(port, UPGRADE('/chat'), 3000)
    expect({ answered: after.answer !== '', closed: after.closed }).toEqual({ answered: true, closed: true })
  })

  it('does not keep the sockets of peers that sent such an upgrade and went away', async () => {
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
