/**
 * Review: in dev mode the dev routes refuse a page of another origin (README,
 * Security: dev mode "is fenced in"), but the WebSocket endpoint on the same
 * server does not. Dev mode always runs on the published dev secret, so any web
 * page the developer visits while `npm start` runs can sign a token for any
 * user itself and open ws://127.0.0.1:3000/ws (browsers send its Origin, and
 * WebSockets need no CORS): it reads that user's inbox live, marks it read,
 * subscribes it to topics. The dev routes' Origin fence is moot.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { DEV_SECRET } from '../../src/server/config.js'
import { signToken } from '../helpers/jwt.js'
import { rawClient, startServer, type TestServer } from '../helpers/server.js'

let t: TestServer | undefined
afterEach(async () => {
  await t?.dispose()
  t = undefined
})

const EVIL = 'https://evil.example'

describe('dev mode: the WebSocket endpoint and other origins', () => {
  it('refuses a socket opened by a page of another origin, as the dev routes refuse its requests', async () => {
    t = await startServer({ dev: true })
    // The dev token route refuses that page (403).
    const route = await fetch(`${t.url}/api/dev/token?user=alice`, { headers: { origin: EVIL, 'sec-fetch-site': 'cross-site' } })
    expect(route.status).toBe(403)

    await t.server.sendToUser('alice', { title: 'private', body: 'for alice only' })
    // The same page signs its own token with the published dev secret and opens the socket.
    const token = await signToken({ sub: 'alice', secret: DEV_SECRET })
    const c = await rawClient(t.wsUrl, { origin: EVIL }).catch(() => undefined)
    if (c === undefined) return // refused at the handshake: fine
    c.send({ type: 'auth', token, userId: 'alice', since: 0 })
    const answer = await c.next((f) => f.type === 'auth_success' || f.type === 'auth_error').catch(() => ({ type: 'closed' }))
    const got = c.of('notification').map((f) => f.title)
    c.close()
    // Today: auth_success, then alice's inbox replayed to the other origin's page.
    expect({ answer: answer.type, got }).toEqual({ answer: expect.not.stringMatching(/^auth_success$/), got: [] })
  })
})
