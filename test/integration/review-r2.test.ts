import type { Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import type WebSocket from 'ws'
import { CloseCode } from '../../src/protocol/index.js'
import { authedClient, type RawClient, useServer } from '../helpers/server.js'

const start = useServer()
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
/** The net socket under a ws client: pausing it stops reading (the client never reads the server's close frame). */
const netSocket = (ws: WebSocket) => (ws as unknown as { _socket: Socket })._socket

describe('review r2: closed but not gone', () => {
  it('a user cannot hold more sockets than maxConnectionsPerUser by getting each one closed and never answering the close', async () => {
    const s = await start({ limits: { maxConnectionsPerUser: 2, ratePerSecond: 1, rateBurst: 2 } })
    // Spend the user's frame budget: from now on each new connection of ann is cut (4029) at its first frame.
    const first = await authedClient(s, 'ann')
    for (let i = 0; i < 3; i++) first.send({ type: 'ping' })
    expect((await first.closed).code).toBe(CloseCode.RateLimited)
    const held: RawClient[] = []
    for (let i = 0; i < 12; i++) {
      const c = await authedClient(s, 'ann')
      netSocket(c.ws).pause() // reads nothing more: the server's close frame is never answered
      c.send({ type: 'ping' })
      held.push(c)
    }
    // Longer than every grace the server gives a socket it closed (1 s refused at auth, 5 s slow consumer).
    await sleep(6500)
    const { sockets, connections } = s.server.stats()
    for (const c of held) c.ws.terminate()
    expect(connections).toBe(0) // the registry forgot them at once...
    // ...but the sockets are still held, six times the user's cap (ws's close timeout is 30 s).
    expect(sockets).toBeLessThanOrEqual(2)
  }, 20_000)
})
