import { describe, expect, it, vi } from 'vitest'
import { authedClient, useServer } from '../helpers/server.js'

const start = useServer()

describe('the per-user byte budget over several connections', () => {
  // docs/protocol.md, "Limits": sendBytesPerSecond / sendBurstBytes — "A byte bucket per user that replay
  // rounds and history pages are paid from. In debt, the next round or page waits until it is paid off."
  // README, "Cost per user": shared by all its connections, "opening more sockets buys nothing".
  // Each connection waits out the debt it saw when its page came in, and then sends without looking
  // again: pages waiting on N sockets of one user all go at once, whatever debt the first of them made,
  // so the user's burst is the budget's plus N pages (up to 100 sockets × 512 KiB at the defaults).
  it('pages asked for on several sockets of one user at once are paced by the budget, not sent together once the first debt is paid', async () => {
    const rate = 5000
    const s = await start({ limits: { sendBytesPerSecond: rate, sendBurstBytes: rate } })
    await s.server.sendToUser('ann', { title: 'big', body: 'x'.repeat(5000) }) // a page of ~5.2 KB
    const N = 8
    // since: 1, the latest: nothing to replay, so the auths spend none of the budget.
    const sockets = await Promise.all(Array.from({ length: N }, () => authedClient(s, 'ann', { since: 1 })))
    const pages: { at: number; bytes: number }[] = []
    for (const c of sockets) {
      c.ws.on('message', (data: Buffer) => {
        if (data.toString().startsWith('{"type":"history"')) pages.push({ at: performance.now(), bytes: data.length })
      })
    }
    const t0 = performance.now()
    for (const [i, c] of sockets.entries()) c.send({ type: 'history', limit: 1, requestId: `h${i}` })
    // At 5 KB/s the eight pages take some 7 s when paced; all must come (nothing is refused).
    await vi.waitFor(() => expect(pages).toHaveLength(N), { timeout: 30_000, interval: 50 })
    const page = Math.max(...pages.map((p) => p.bytes))
    // By each page's arrival the user was sent at most the burst, what the rate refilled since the requests
    // went out (measured at the client, later than the server sent: generous), and two pages' slack.
    let received = 0
    const over: string[] = []
    for (const p of pages) {
      received += p.bytes
      const elapsed = (p.at - t0) / 1000
      const allowed = rate + rate * elapsed + 2 * page
      if (received > allowed) over.push(`${received} B by ${elapsed.toFixed(2)} s (allowed ${Math.round(allowed)} B)`)
    }
    expect(over, `pages sent past the user's byte budget of ${rate} B/s, burst ${rate} B`).toEqual([])
    for (const c of sockets) c.close()
  }, 60_000)
})
