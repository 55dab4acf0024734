import { describe, expect, it } from 'vitest'
import { rawClient, useServer } from '../helpers/server.js'

const start = useServer()

describe('review r2: the user’s frame budget', () => {
  it('frames sent right behind the auth frame are paid from the user’s frame budget too', async () => {
    // 1 frame a second, 2 at once: a third ping in a row closes the connection with 4029.
    const s = await start({ limits: { ratePerSecond: 1, rateBurst: 2 } })
    const token = await s.token('ann')
    let pongs = 0
    let rateLimited = 0
    for (let round = 0; round < 5; round++) {
      const c = await rawClient(s.wsUrl)
      // One write: the auth frame and nine requests behind it, all arriving before auth completes.
      c.send({ type: 'auth', token, since: 0 })
      for (let i = 0; i < 9; i++) c.send({ type: 'ping', requestId: `p${round}-${i}` })
      const closed = c.closed.then(({ code }) => code)
      await Promise.race([c.next((f) => f.requestId === `p${round}-8`).catch(() => undefined), closed])
      pongs += c.of('pong').length
      if (c.ws.readyState !== c.ws.OPEN && (await closed) === 4029) rateLimited++
      c.close()
    }
    // 45 requests answered within a second against a budget of 2 + 1/s: the budget counts none of them.
    // A budget of 2 + 1/s answers a handful at most, and cuts the connections that went past it (4029).
    expect(pongs).toBeLessThanOrEqual(5)
    expect(rateLimited).toBeGreaterThan(0)
  })
})
