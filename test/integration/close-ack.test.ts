/**
 * A close the server started and the client answered acks what the socket was sent before it
 * (drain.test.ts); only that one. A client that closed first, a drain coming during its closing
 * handshake, is no answer to the server's close: nothing is acked, not even a notification the
 * server skipped (the socket no longer open).
 */
import type { Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { httpPublish, rawClient, useServer } from '../helpers/server.js'

const start = useServer()
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('a close the client started, then a drain during its closing handshake', () => {
  it('acks nothing: the next connection of the article’s client still gets the notification published after the client’s close (never written to its socket)', async () => {
    const s = await start({ drainMs: 0 })
    // The article's client: no `since`, no acks of its own.
    const article = await rawClient(s.wsUrl)
    article.send({ type: 'auth', token: await s.token('ann') })
    await article.next((f) => f.type === 'auth_success')
    expect((await httpPublish(s.url, { userId: 'ann', title: 'one', body: '' })).status).toBe(201)
    await article.next((f) => f.type === 'notification')

    // The client closes (a page going away): its close frame goes out, and it reads nothing more for now
    // (its socket paused), so the closing handshake stays open on the server (readyState CLOSING).
    const socket = (article.ws as unknown as { _socket: Socket })._socket
    socket.pause()
    article.ws.close(1000)
    await wait(200) // the server reads the client's close frame

    // Published while the socket is CLOSING: deliver() counts it sent (sentSeq 2), send() skips it.
    expect((await httpPublish(s.url, { userId: 'ann', title: 'two', body: '' })).status).toBe(201)
    await wait(100)

    // A deploy now: the server's close (1001) comes after the client's. The client's socket then ends.
    const drained = s.server.drain()
    socket.resume()
    await drained
    await expect(article.closed).resolves.toMatchObject({ code: 1000 })

    // The next connection of the article's client starts after the acknowledged cursor.
    await s.restart()
    const again = await rawClient(s.wsUrl)
    again.send({ type: 'auth', token: await s.token('ann') })
    expect(await again.next((f) => f.type === 'auth_success')).toMatchObject({ seq: 2 })
    await wait(300)
    // Seq 2 never went out on any socket: it must come now (seq 1 may come again: at least once).
    // Gone() acked 2 on the client's own close, so nothing comes.
    expect(again.of('notification').map((n) => n.seq)).toContain(2)
    again.close()
  })
})
