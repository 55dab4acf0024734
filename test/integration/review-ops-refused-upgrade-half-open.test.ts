/**
 * Review: a refused WebSocket upgrade (503 while draining, 404 on another path, 403 dev fence) is
 * answered with `socket.end(...)` only (notification-server.ts #upgrade). The HTTP server's sockets
 * allow half-open connections, and an upgraded socket is out of the HTTP server's timeouts and of
 * closeAllConnections(): a peer that does not close its side keeps the socket open for ever. Then
 * `server.close()`'s callback never comes, so drain() (SIGTERM) and close() never resolve and
 * belfry-server never exits.
 */
import { connect, type Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { authedClient, useServer } from '../helpers/server.js'

const start = useServer()

/** Sends a WebSocket upgrade on `path` from a peer that reads the answer but never closes its side. */
function halfOpenUpgrade(port: number, path: string): { socket: Socket; answered: Promise<string>; closed: Promise<void> } {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  let text = ''
  const answered = new Promise<string>((resolve) => socket.on('end', () => resolve(text)))
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  socket.on('data', (d) => {
    text += d.toString()
  })
  socket.on('error', () => {})
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  )
  return { socket, answered, closed }
}

const within = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p.then(() => 'done' as const), new Promise<'timed out'>((r) => setTimeout(() => r('timed out'), ms))])

describe('a refused upgrade whose peer keeps its half open', () => {
  it('does not hold a drain (SIGTERM) open for ever: drain() resolves and the refused socket is closed', async () => {
    const t = await start({ drainMs: 1000 })
    const ann = await authedClient(t, 'ann')
    const drained = t.server.drain()
    // A client that lands on the draining process: 503, as documented.
    const late = halfOpenUpgrade(t.port, '/ws')
    expect(await late.answered).toMatch(/^HTTP\/1\.1 503 /)
    expect((await ann.closed).code).toBe(1001)
    try {
      // The drain window (1 s) plus the close grace (2 s) and the HTTP grace (2 s), with room to spare.
      expect(await within(drained, 9000)).toBe('done')
      expect(await within(late.closed, 1000)).toBe('done')
    } finally {
      late.socket.destroy() // lets the test's own clean-up finish
      await drained
    }
  }, 20_000)
})
