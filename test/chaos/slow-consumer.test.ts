/**
 * Slow consumer: a client that authenticates and then stops reading while
 * the server floods it. The server must cut it off with 4009 once its send
 * buffer passes maxBufferedBytes, keep its own memory bounded, and keep
 * serving everyone else. The server runs in this process, so its memory is
 * this process's memory.
 */
import type { Socket } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { CloseCode } from '../../src/protocol/index.js'
import { authedClient, startServer, type TestServer } from '../helpers/server.js'
import { MB, type Recorded, range, recordedClient, retainedHeap, seedFor } from './util.js'

const MAX_BUFFERED = 256 * 1024
/** 10,000 × ~2 KB ≈ 20 MB: eighty times the bound, so a server that kept buffering would show it. */
const FLOOD = 10_000
/** Retained growth allowed (at the cut, and after the flood): the bound plus generous slack for the test's own garbage. */
const MEMORY_BOUND = 16 * MB

let t: TestServer | undefined
const clients: Recorded[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.client.close()
  await t?.dispose()
  t = undefined
})

const retained = async () => {
  const heap = await retainedHeap()
  return { heap, buffers: process.memoryUsage().arrayBuffers }
}

describe('slow consumer', () => {
  it('a client that stops reading is cut off with 4009, memory stays bounded, and other users get everything', async () => {
    const random = seedFor('slow consumer')
    t = await startServer({ limits: { maxBufferedBytes: MAX_BUFFERED } })
    const server = t
    const bystanders = ['bob', 'carol'].map((user) => {
      const r = recordedClient({ url: server.wsUrl, token: () => server.token(user) })
      clients.push(r)
      return r
    })
    for (const b of bystanders) b.client.connect()
    await Promise.all(bystanders.map((b) => b.client.ready()))

    const slow = await authedClient(server, 'slow')
    const before = await retained()
    const socket = (slow.ws as unknown as { _socket: Socket })._socket
    socket.pause() // authenticated, then reads nothing more
    const framesAtPause = slow.frames.length

    const body = 'x'.repeat(2000)
    const bystanderIds: string[] = []
    let cutAt = -1
    let atCut = before
    let peak = 0
    for (let i = 0; i < FLOOD; i++) {
      await server.server.sendToUser('slow', { title: `flood ${i}`, body, data: { i } })
      if (cutAt < 0 && server.server.stats().connections < 3) {
        // Gone from the registry at once: nothing more is sent to it.
        cutAt = i
        atCut = await retained()
        expect(slow.frames.length, 'it read nothing while paused').toBe(framesAtPause)
        // Read again before the server's grace period (5 s) ends: behind what was buffered, the close frame.
        socket.resume()
        expect(await slow.closed).toMatchObject({ code: CloseCode.SlowConsumer })
        // Everything sent before the cut (the last one tipped the buffer over), in order, then the close.
        expect(slow.of('notification').map((n) => (n.data as { i: number }).i)).toEqual(range(0, cutAt))
        // Then the flood goes on, into the store only: nothing may pile up for a user without connections.
      }
      if (random.chance(0.01)) {
        bystanderIds.push((await server.server.sendToUsers(['bob', 'carol'], { title: `meanwhile ${i}`, body: '' })).id)
      }
      if (i % 500 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers)
    }
    const after = await retained()
    const mb = (n: number) => `${(n / MB).toFixed(1)} MB`
    console.log(
      `[chaos] slow consumer: cut off after ${cutAt + 1} of ${FLOOD} notifications (~${mb((cutAt + 1) * 2048)} sent into the paused socket); ` +
        `retained growth at the cut: heap ${mb(atCut.heap - before.heap)}, buffers ${mb(atCut.buffers - before.buffers)}; ` +
        `after the flood: heap ${mb(after.heap - before.heap)}, buffers ${mb(after.buffers - before.buffers)}; sampled peak (absolute) ${mb(peak)}`,
    )
    expect(cutAt, 'the server cut the slow consumer during the flood').toBeGreaterThanOrEqual(0)
    for (const m of [atCut, after]) {
      expect(m.heap - before.heap).toBeLessThan(MEMORY_BOUND)
      expect(m.buffers - before.buffers).toBeLessThan(MEMORY_BOUND)
    }
    await vi.waitFor(() => expect(server.server.stats()).toMatchObject({ users: 2, connections: 2, sockets: 2 }), { timeout: 15_000 })

    // The others got everything, once, in order.
    for (const b of bystanders) {
      await vi.waitFor(() => expect(b.notifications.length).toBeGreaterThanOrEqual(bystanderIds.length), { timeout: 15_000 })
      expect(b.notifications.map((n) => n.id)).toEqual(bystanderIds)
      expect(b.seqs()).toEqual(range(1, bystanderIds.length))
    }

    // And the slow user, reconnecting as a well-behaved client without a cursor, pages through the rest exactly
    // once: it answered its 4009 having read everything sent before it, which the server acked.
    const back = recordedClient({ url: server.wsUrl, token: () => server.token('slow') })
    clients.push(back)
    back.client.connect()
    await vi.waitFor(() => expect(back.notifications.length).toBeGreaterThanOrEqual(FLOOD - cutAt - 1), {
      timeout: 30_000,
      interval: 100,
    })
    expect(back.seqs()).toEqual(range(cutAt + 2, FLOOD))
    expect(back.notifications.map((n) => (n.data as { i: number }).i)).toEqual(range(cutAt + 1, FLOOD - 1))
  }, 60_000)
})
