import { describe, expect, it } from 'vitest'
import { ErrorCode } from '../../src/protocol/index.js'
import { rawClient, settle, useServer } from '../helpers/server.js'

const start = useServer()

// docs/protocol.md, "Server → client frames", `error`: "It echoes the request's `requestId` when the request had a
// valid one." A `requestId`, where allowed, is a string of 1–64 well-formed characters; `ack` defines none ("Fields
// that a frame type does not define are ignored"). Before auth, an `ack` is answered `not_authenticated`, and that
// reply echoes whatever its `requestId` field held: an object, a 200-character string, a lone surrogate.
describe('review: an error reply echoes only a valid requestId', () => {
  it.each([
    ['an object', '{"type":"ack","seq":1,"requestId":{"x":1}}'],
    ['a 200-character string', `{"type":"ack","seq":1,"requestId":"${'z'.repeat(200)}"}`],
    ['a lone surrogate', '{"type":"ack","seq":1,"requestId":"\\ud800"}'],
    ['a number', '{"type":"ack","seq":1,"requestId":7}'],
  ])('an ack before auth whose requestId is %s gets not_authenticated without echoing it', async (_, text) => {
    const s = await start()
    const c = await rawClient(s.wsUrl)
    c.send(text)
    const error = await c.next((f) => f.type === 'error')
    expect(error.code).toBe(ErrorCode.NotAuthenticated)
    // The same connection still authenticates and answers a request afterwards.
    c.send({ type: 'auth', token: await s.token('ann'), since: 0 })
    await c.next((f) => f.type === 'replayed' && f.more === false)
    await settle(c)
    expect(error).not.toHaveProperty('requestId')
    c.close()
  })
})
