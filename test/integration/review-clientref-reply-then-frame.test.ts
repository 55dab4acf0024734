import { type AddressInfo } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import { NotificationClient } from '../../src/index.js'

/**
 * README "Events": `unread` says the count "when the unread count changes", and the `read` event and
 * `unreadCount` follow the server's frames in the order they come. In Node (`ws`, which emits the
 * messages of one TCP read synchronously, one after the other), a `mark_read` reply is applied to the
 * count only some microtasks after it arrived: a frame that came right behind it in the same read (a
 * live notification published after the change, or another device's read change) is applied first,
 * and the late reply then overwrites the newer count with its older one.
 */

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
const TOKEN = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: 'ann' })}.sig`
const note = (seq: number) => ({
  type: 'notification',
  id: `n${seq}`,
  seq,
  title: `t${seq}`,
  body: '',
  priority: 'medium',
  timestamp: '2024-01-01T00:00:00.000Z',
  read: false,
})

let wss: WebSocketServer | undefined
let client: NotificationClient | undefined
afterEach(async () => {
  client?.close()
  await new Promise((r) => (wss ? wss.close(r) : r(undefined)))
  wss = client = undefined
})

/** A belfry-protocol server (seq 5, 3 unread) that answers a mark_read with its reply and, right behind it in one write, `after`. */
async function serve(after: (markRead: { requestId: string }) => object): Promise<string> {
  wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await new Promise((r) => wss!.once('listening', r))
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      const f = JSON.parse(String(data))
      if (f.type === 'auth') {
        ws.send(JSON.stringify({ type: 'auth_success', message: 'ok', userId: 'ann', seq: 5, unreadCount: 3, oldestSeq: 0, pingAcks: true }))
        ws.send(JSON.stringify({ type: 'replayed', more: false, seq: 5 }))
      }
      if (f.type === 'mark_read') {
        const reply = JSON.stringify({ type: 'read', ids: f.ids ?? [], all: !!f.all, seq: 5, unreadCount: 2, requestId: f.requestId })
        // The reply, then the next frame: both reach the client in one TCP read, as frames written together do.
        const socket = (ws as unknown as { _socket: import('node:net').Socket })._socket
        socket.cork()
        ws.send(reply)
        ws.send(JSON.stringify(after(f)))
        process.nextTick(() => socket.uncork())
      }
    })
  })
  return `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/ws`
}

describe('README "Events": the unread count follows the frames in the order they come (Node, ws)', () => {
  it('a live notification right behind a markRead reply is still counted as unread', async () => {
    const url = await serve(() => note(6))
    client = new NotificationClient({ url, token: TOKEN, WebSocket, storage: false })
    const counts: number[] = []
    const seqs: number[] = []
    client.on('unread', ({ count }) => counts.push(count))
    client.on('notification', (n) => seqs.push(n.seq))
    await client.ready({ timeout: 5000 })
    expect(client.unreadCount).toBe(3)
    await client.markRead('n1') // 3 → 2 on the server, then n6 (unread) comes: 3
    await vi.waitFor(() => expect(seqs).toEqual([6]))
    await new Promise((r) => setTimeout(r, 50))
    expect(client.unreadCount).toBe(3)
    expect(counts.at(-1)).toBe(3)
  })

  it("another device's markAllRead right behind this client's markRead reply leaves the count at 0", async () => {
    const url = await serve(() => ({ type: 'read', ids: [], all: true, seq: 5, unreadCount: 0 }))
    client = new NotificationClient({ url, token: TOKEN, WebSocket, storage: false })
    const reads: { all: boolean; unreadCount: number }[] = []
    client.on('read', (e) => reads.push(e))
    await client.ready({ timeout: 5000 })
    await client.markRead('n1') // 3 → 2, then all read elsewhere: 0
    await vi.waitFor(() => expect(reads).toHaveLength(2))
    expect(reads.map((e) => e.unreadCount)).toEqual([2, 0]) // the order the server said them in
    expect(client.unreadCount).toBe(0)
  })
})
