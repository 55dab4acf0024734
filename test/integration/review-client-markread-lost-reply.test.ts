import { type AddressInfo, createServer, type Server, type Socket, connect as tcpConnect } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { ClientPool } from '../helpers/client.js'
import { startServer, type TestServer } from '../helpers/server.js'

/**
 * A markRead() in flight when the connection dies after the server committed
 * the change but before its reply reached the client (a deploy's close, a
 * network drop): the client sends the request again after it reconnects, as
 * requests.ts promises ("every request is idempotent"). The server then finds
 * the ids read already and answers `ids: []`, and the first change's `read`
 * frame went only to the user's *other* connections. So the app never hears
 * that the id became read: the promise resolves with no ids and the `read`
 * event names none. The demo (demo/inbox.ts) keeps the item shown unread, with
 * its "Mark read" button, while the badge has dropped.
 */

let t: TestServer | undefined
let proxy: CutProxy | undefined
const clients = new ClientPool()

afterEach(async () => {
  clients.closeAll()
  await proxy?.close()
  await t?.dispose()
  t = proxy = undefined
})

/**
 * A TCP proxy to the server. Armed, it cuts the connection on the next chunk the
 * server sends (dropping that chunk): the client's frames are masked, so the cut
 * is armed just before the client sends its request, on a quiet connection.
 */
class CutProxy {
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  armed = false
  cut = 0
  constructor(private readonly target: number) {
    this.#server = createServer((client) => {
      const upstream = tcpConnect(this.target, '127.0.0.1')
      for (const s of [client, upstream]) {
        this.#sockets.add(s)
        s.on('error', () => s.destroy())
        s.once('close', () => this.#sockets.delete(s))
      }
      client.on('data', (chunk: Buffer) => upstream.write(chunk))
      upstream.on('data', (chunk: Buffer) => {
        if (!this.armed) return void client.write(chunk)
        this.armed = false
        this.cut++
        client.destroy()
        upstream.destroy()
      })
      client.once('close', () => upstream.destroy())
      upstream.once('close', () => client.destroy())
    })
  }
  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve))
    return (this.#server.address() as AddressInfo).port
  }
  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

describe('review: markRead whose reply is lost with the connection', () => {
  it('still tells the app that the id became read (promise and read event)', async () => {
    t = await startServer()
    const s = t
    proxy = new CutProxy(s.port)
    const port = await proxy.listen()
    const { client, events } = await clients.online({ url: `ws://127.0.0.1:${port}/ws`, token: () => s.token('ann') })
    const { id } = await s.server.sendToUser('ann', { title: 'hello', body: '' })
    await expect.poll(() => events.notifications.map((n) => n.id)).toEqual([id])
    expect(client.unreadCount).toBe(1)

    // The server's next frame is the reply to mark_read (sent after its commit): lost with the connection.
    proxy.armed = true
    const result = await client.markRead(id)

    expect(proxy.cut).toBe(1)
    expect(events.count('reconnecting')).toBeGreaterThanOrEqual(1)
    expect(client.unreadCount).toBe(0) // the badge is right...
    // ...but the app is told of no id: the item stays unread in the list.
    expect(result.ids).toContain(id)
    expect(events.reads.flatMap((r) => r.ids)).toContain(id)
  })
})
