/**
 * Review: `belfry_closes_total` counts a socket "by the server's code, else the client's" (README,
 * Metrics). After auth, a frame over `maxFrameBytes` is closed by `ws` with 1009 (docs/protocol.md,
 * Close codes) — the server sent 1009 — yet the close is counted under `code="1006"` ("no close
 * frame"), as if the network had dropped the socket.
 */
import { describe, expect, it, vi } from 'vitest'
import { API_KEY, authedClient, type TestServer, useServer } from '../helpers/server.js'

const start = useServer()

async function series(t: TestServer): Promise<Map<string, number>> {
  const res = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${API_KEY}` } })
  expect(res.status).toBe(200)
  const map = new Map<string, number>()
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    map.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return map
}

describe('belfry_closes_total after auth', () => {
  it('counts the 1009 the server sent for a frame over maxFrameBytes under code="1009", not "1006"', async () => {
    const t = await start({ metrics: true, limits: { maxFrameBytes: 4096 } })
    const before = await series(t)
    const c = await authedClient(t, 'ann')
    c.send({ type: 'ping', requestId: 'x'.repeat(10_000) })
    // The server's close frame reached the client: 1009.
    expect((await c.closed).code).toBe(1009)
    await vi.waitFor(() => expect(t.server.stats().sockets).toBe(0))
    const after = await series(t)
    const delta = (code: string) =>
      (after.get(`belfry_closes_total{code="${code}"}`) ?? 0) - (before.get(`belfry_closes_total{code="${code}"}`) ?? 0)
    expect({ 1009: delta('1009'), 1006: delta('1006') }).toEqual({ 1009: 1, 1006: 0 })
  })
})
