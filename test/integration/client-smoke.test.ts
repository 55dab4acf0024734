import { afterEach, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import { type Notification, NotificationClient } from '../../src/index.js'
import { startServer, type TestServer } from '../helpers/server.js'

let t: TestServer
let client: NotificationClient | undefined
afterEach(async () => {
  client?.close()
  await t?.dispose()
})

describe('client smoke', () => {
  it('connects, receives, survives a restart and resumes', async () => {
    t = await startServer()
    const got: Notification[] = []
    client = new NotificationClient({
      url: t.wsUrl,
      token: () => t.token('carol'),
      WebSocket: WebSocket as never,
      backoff: { initial: 50, max: 200 },
    })
    client.on('notification', (n) => got.push(n))
    client.connect()
    await client.ready()
    await t.server.sendToUser('carol', { title: 'one', body: '' })
    await vi.waitFor(() => expect(got.map((n) => n.seq)).toEqual([1]))
    await t.restart()
    await t.server.sendToUser('carol', { title: 'two', body: '' })
    await vi.waitFor(() => expect(got.map((n) => n.seq)).toEqual([1, 2]), { timeout: 5000 })
    expect(client.unreadCount).toBe(2)
    await client.markAllRead()
    expect(client.unreadCount).toBe(0)
    const page = await client.history({ limit: 10 })
    expect(page.items.map((n) => n.seq)).toEqual([2, 1])
  })
})
