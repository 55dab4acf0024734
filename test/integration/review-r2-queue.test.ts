import { describe, expect, it } from 'vitest'
import { MAX_QUEUED_REQUESTS } from '../../src/server/connection/connection.js'
import { authedClient, useServer } from '../helpers/server.js'

const start = useServer()
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('review r2: requests waiting on one connection', () => {
  it(`past ${MAX_QUEUED_REQUESTS} waiting, auth and resume frames are answered at once too, not queued without bound`, async () => {
    // Pages of ~5 KB against a budget of 1 KB/s: the queue waits seconds behind them (as in limits.test.ts).
    const s = await start({ limits: { sendBytesPerSecond: 1000, sendBurstBytes: 1000, rateBurst: 400, ratePerSecond: 100 } })
    await s.server.sendToUser('ann', { title: 'big', body: 'x'.repeat(5000) })
    const c = await authedClient(s, 'ann')
    for (let i = 0; i < MAX_QUEUED_REQUESTS; i++) c.send({ type: 'history', limit: 1, requestId: `h${i}` })
    // Then 200 frames the queue takes past its bound: each a second auth (refused once handled) or a resume
    // (no replay waits for it), each carrying 60 KB the server keeps with the frame until it is handled.
    const pad = 'x'.repeat(60_000)
    const token = await s.token('ann')
    for (let i = 0; i < 100; i++) {
      c.send({ type: 'auth', token, since: 0, pad })
      c.send({ type: 'resume', since: 1, requestId: `r${i}`, pad })
    }
    await sleep(2000)
    const answered = c.frames.filter((f) => f.type === 'error' && (f.code === 'rate_limited' || String(f.requestId).startsWith('r'))).length
    c.ws.terminate()
    // The bound says one more than 64 waiting is answered rate_limited at once: 200 answers. None came:
    // the 200 frames (12 MB) wait behind the pages.
    expect(answered).toBeGreaterThanOrEqual(100)
  })
})
