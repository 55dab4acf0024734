/**
 * docs/protocol.md, "Acks": a client that answers the server's close has everything sent before it (the server
 * pings the last seq just ahead of its close frame, and the answer's pong acks it); a close the client starts acks
 * nothing, even when the server's crosses it with the same code.
 *
 * A browser closes a page's socket with 1001 when the page is left. That close may cross the server's own 1001
 * (`server.close()`, SIGINT, a second SIGTERM, `BELFRY_DRAIN_MS=0`). The server took the page's close for the
 * answer to its own (it compared the codes) and acked what it had sent, which the page never had: a browser hands
 * a page no message once its socket is closing. The article's client's next page then started after it.
 */
import type { Socket } from 'node:net'
import { describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import { useServer } from '../helpers/server.js'

const start = useServer()
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * The article's browser client, as written there, on `ws` (the browser WebSocket API), on the root path. As in a
 * browser, a message that arrives once the page closed its socket is not handed to the page.
 */
function articlePage(url: string, token: string) {
  const shown: string[] = []
  const ws = new WebSocket(url)
  ws.on('error', () => {})
  function showNotification(title: unknown, body: unknown, priority: unknown) {
    shown.push(`[${priority}] ${title}: ${body}`)
  }
  ws.onopen = () => {
    ws.send(JSON.stringify({ type: 'auth', userId: 'user123', token }))
  }
  ws.onmessage = (event) => {
    if (ws.readyState !== WebSocket.OPEN) return // the browser's rule, not the article's code
    const data = JSON.parse(String(event.data))
    if (data.type === 'notification') showNotification(data.title, data.body, data.priority)
  }
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)))
  return { ws, shown, closed }
}

describe("the article's client: its page's own 1001 crossing the server's", () => {
  it('acks nothing: what the page never got comes to its next page', async () => {
    const s = await start()
    const url = `ws://127.0.0.1:${s.port}/`
    const page = articlePage(url, await s.token('user123'))
    await vi.waitFor(() => expect(s.server.stats().connections).toBe(1))
    await wait(100) // its (empty) replay is over: live
    await s.server.sendToUser('user123', { title: 'one', body: 'the first', priority: 'high' })
    await vi.waitFor(() => expect(page.shown).toHaveLength(1))
    await wait(1500) // about a second after sending, the server's ack ping: 'one' is acked

    // 'two' and then the server's close are on their way (the network holds them: the socket reads nothing).
    const socket = (page.ws as unknown as { _socket: Socket })._socket
    socket.pause()
    await s.server.sendToUser('user123', { title: 'two', body: 'the second', priority: 'high' })
    await wait(50)
    const closing = s.server.close() // closes every socket with 1001
    await wait(50)
    // Meanwhile the user leaves the page: the browser closes its socket with 1001, before it has read the server's.
    page.ws.close(1001)
    socket.resume() // the frames on their way arrive; the page, closing, is handed none of them
    await closing
    await page.closed
    expect(page.shown).toEqual(['[high] one: the first'])

    // The user's next page: it starts after the acknowledged cursor, which must not cover 'two'.
    await s.restart()
    const next = articlePage(url, await s.token('user123'))
    await wait(500)
    next.ws.close()
    expect(next.shown).toEqual(['[high] two: the second'])
  })
})
