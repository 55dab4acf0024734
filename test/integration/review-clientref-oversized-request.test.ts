import { randomUUID } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { ProtocolError } from '../../src/index.js'
import { ClientPool } from '../helpers/client.js'
import { startServer, type TestServer } from '../helpers/server.js'

/**
 * README "The client": `markRead` takes "an array of 1–500 ids (more: mark them in parts)", and its TSDoc
 * says the server "refuses more as `bad_frame`, a ProtocolError" — which holds for 501 ids, but not once
 * the frame passes the server's `maxFrameBytes` (64 KiB: about 1,700 UUIDs). `ws` then closes the socket
 * with 1009, the client reconnects and, as it does with every request whose reply the drop lost, sends the
 * same frame again after each auth: the connection is cut again and again until requestTimeout, and the
 * app gets a TimeoutError, never the ProtocolError.
 */

let t: TestServer | undefined
const clients = new ClientPool()
afterEach(async () => {
  clients.closeAll()
  await t?.dispose()
  t = undefined
})

describe('a request frame over the server’s maxFrameBytes', () => {
  it('markRead of 2,000 ids rejects as too many, without cutting the connection (and every request with it) again and again', async () => {
    t = await startServer()
    const s = t
    const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token('ann'), requestTimeout: 4000 })
    const ids = Array.from({ length: 2000 }, () => randomUUID())
    const error = await client.markRead(ids).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(ProtocolError)
    expect(events.count('reconnecting'), 'the connection was cut for it').toBe(0)
  })
})
