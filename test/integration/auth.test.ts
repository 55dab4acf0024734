import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import { AuthError, type ConnectionState } from '../../src/index.js'
import { CloseCode, ErrorCode, parseRetryReason } from '../../src/protocol/index.js'
import { topicsClaim } from '../../src/server/index.js'
import { ClientPool } from '../helpers/client.js'
import { payloadOf, signToken, unsignedToken, withPayload } from '../helpers/jwt.js'
import { authedClient, type RawClient, rawClient, startServer, type TestServer } from '../helpers/server.js'

let t: TestServer | undefined

/** Starts a server that afterEach disposes. */
async function start(options?: Parameters<typeof startServer>[0]): Promise<TestServer> {
  t = await startServer(options)
  return t
}

afterEach(async () => {
  await t?.dispose()
  t = undefined
})

/** Sends one auth frame on a fresh socket and waits for the refusal and the close. */
async function refused(server: TestServer, auth: Record<string, unknown>) {
  const c = await rawClient(server.wsUrl)
  c.send({ type: 'auth', ...auth })
  // Stop at auth_success too, so an accepted token fails at once instead of at the test timeout.
  const error = await c.next((f) => f.type === 'auth_error' || f.type === 'auth_success')
  expect(error.type).toBe('auth_error')
  const close = await c.closed
  expect(server.server.stats()).toMatchObject({ users: 0, connections: 0 })
  return { error, close }
}

/** A ping/pong round trip: every frame the server sent before the pong has arrived. */
async function roundTrip(c: RawClient, requestId: string): Promise<void> {
  c.send({ type: 'ping', requestId })
  await c.next((f) => f.type === 'pong' && f.requestId === requestId)
}

describe('auth: tokens', () => {
  it('accepts a valid token with auth_success carrying userId, seq and unreadCount', async () => {
    const s = await start()
    await s.server.sendToUser('alice', { title: 'one', body: '' })
    await s.server.sendToUser('alice', { title: 'two', body: '' })
    const c = await rawClient(s.wsUrl)
    c.send({ type: 'auth', token: await s.token('alice'), userId: 'alice' })
    const ok = await c.next((f) => f.type === 'auth_success')
    expect(ok).toMatchObject({ type: 'auth_success', message: expect.any(String), userId: 'alice', seq: 2, unreadCount: 2 })
    await c.next((f) => f.type === 'replayed' && f.more === false)
    expect(c.of('notification').map((n) => n.seq)).toEqual([1, 2])
    expect(s.server.stats()).toMatchObject({ users: 1, connections: 1, sockets: 1 })
  })

  it('refuses a token signed with the wrong secret: token_invalid, close 4001', async () => {
    const s = await start()
    const token = await signToken({ sub: 'alice', secret: 'not-the-server-secret-0123456789' })
    const { error, close } = await refused(s, { token, userId: 'alice' })
    expect(error).toMatchObject({ code: ErrorCode.TokenInvalid, message: expect.any(String) })
    expect(close.code).toBe(CloseCode.TokenInvalid)
  })

  it('refuses a token whose payload was changed (sub swapped, signature kept): 4001', async () => {
    const s = await start()
    const genuine = await s.token('alice')
    const token = withPayload(genuine, { ...payloadOf(genuine), sub: 'mallory' })
    const { error, close } = await refused(s, { token, userId: 'mallory' })
    expect(error).toMatchObject({ code: ErrorCode.TokenInvalid })
    expect(close.code).toBe(CloseCode.TokenInvalid)
  })

  it('refuses an expired token: token_expired, close 4002', async () => {
    const s = await start()
    const token = await signToken({ sub: 'alice', expIn: -60 })
    const { error, close } = await refused(s, { token, userId: 'alice' })
    expect(error).toMatchObject({ code: ErrorCode.TokenExpired })
    expect(close.code).toBe(CloseCode.TokenExpired)
  })

  it('refuses an unsigned alg:none token: 4001', async () => {
    const s = await start()
    const token = unsignedToken({ sub: 'alice', iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 3600 })
    expect(token.endsWith('.')).toBe(true)
    const { error, close } = await refused(s, { token, userId: 'alice' })
    expect(error).toMatchObject({ code: ErrorCode.TokenInvalid })
    expect(close.code).toBe(CloseCode.TokenInvalid)
  })

  it.each(['HS384', 'HS512'] as const)('refuses %s even with the right secret (algorithm pinned to HS256): 4001', async (alg) => {
    const s = await start()
    const token = await signToken({ sub: 'alice', alg })
    expect(JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString())).toMatchObject({ alg })
    const { error, close } = await refused(s, { token, userId: 'alice' })
    expect(error).toMatchObject({ code: ErrorCode.TokenInvalid })
    expect(close.code).toBe(CloseCode.TokenInvalid)
  })

  it('refuses a token without exp: 4001', async () => {
    const s = await start()
    const token = await signToken({ sub: 'alice', expIn: null })
    expect(payloadOf(token)).not.toHaveProperty('exp')
    const { error, close } = await refused(s, { token })
    expect(error).toMatchObject({ code: ErrorCode.TokenInvalid })
    expect(close.code).toBe(CloseCode.TokenInvalid)
  })

  it('refuses a token without sub: 4001', async () => {
    const s = await start()
    const token = await signToken({ sub: null })
    expect(payloadOf(token)).not.toHaveProperty('sub')
    const { error, close } = await refused(s, { token })
    expect(error).toMatchObject({ code: ErrorCode.TokenInvalid })
    expect(close.code).toBe(CloseCode.TokenInvalid)
  })

  it.each([
    ['a number', 123],
    ['an array', ['alice']],
    ['an object', { id: 'alice' }],
    ['empty', ''],
    ['longer than 64 characters', 'a'.repeat(65)],
    ['with a control character', 'ann\u0000'],
    ['with an escape sequence', 'ann\u001b[2J'],
    ['with a C1 control', 'ann\u0085'],
    ['a lone surrogate', 'ann\ud800'],
  ])('refuses a token whose sub is %s: token_invalid, close 4001, with the sub as userId too (as a client sends it)', async (_, sub) => {
    const s = await start()
    const token = await signToken({ sub: null, claims: { sub } })
    expect(payloadOf(token).sub).toEqual(sub)
    for (const frame of typeof sub === 'string' ? [{ token }, { token, userId: sub }] : [{ token }]) {
      const { error, close } = await refused(s, frame)
      expect(error).toMatchObject({ code: ErrorCode.TokenInvalid, message: expect.stringMatching(/"sub"/) })
      expect(close.code).toBe(CloseCode.TokenInvalid)
    }
  })

  it.each([
    ['exp is a string', { exp: 'tomorrow' }],
    ['nbf is a string', { nbf: 'now' }],
    ['nbf is in the future', { nbf: Math.floor(Date.now() / 1000) + 600 }],
    ['iat is a string', { iat: 'now' }],
  ])('refuses a token whose %s: token_invalid, close 4001', async (_, claims) => {
    const s = await start()
    const token = await signToken({ expIn: 'exp' in claims ? null : 3600, claims })
    const { error, close } = await refused(s, { token })
    expect(error).toMatchObject({ code: ErrorCode.TokenInvalid })
    expect(close.code).toBe(CloseCode.TokenInvalid)
  })

  it('accepts a token whose nbf is up to a minute ahead (the minting backend’s clock runs ahead), refuses one further ahead', async () => {
    const s = await start()
    const now = Math.floor(Date.now() / 1000)
    const c = await rawClient(s.wsUrl)
    c.send({ type: 'auth', token: await signToken({ sub: 'ann', claims: { nbf: now + 30 } }) })
    expect(await c.next((f) => f.type === 'auth_error' || f.type === 'auth_success')).toMatchObject({ type: 'auth_success', userId: 'ann' })
    c.close()
    const { error, close } = await refused(s, { token: await signToken({ sub: 'ann', claims: { nbf: now + 90 } }) })
    expect(error).toMatchObject({ code: ErrorCode.TokenInvalid })
    expect(close.code).toBe(CloseCode.TokenInvalid)
  })

  it('refuses a userId that differs from sub, one that could be no user id too: forbidden, close 4003', async () => {
    const s = await start()
    for (const userId of ['mallory', 'alice\u0000', 'a'.repeat(65)]) {
      const { error, close } = await refused(s, { token: await s.token('alice'), userId })
      expect(error).toMatchObject({ code: ErrorCode.Forbidden })
      expect(close.code).toBe(CloseCode.Forbidden)
    }
  })
})

/** A token of ann's whose topics claim grants `n` topics (about 20 characters each). */
const grantsToken = (n: number) => signToken({ sub: 'ann', claims: { topics: Array.from({ length: n }, (_, i) => `tenant:acme-${i}:*`) } })

/**
 * A client on `s` whose token function hands out `token()` (its calls counted), connected and waited on until
 * its state is `state`, for at most 5 s: the test's assertions then say how it ended.
 */
async function tokenClient(s: TestServer, token: () => string | Promise<string>, state: ConnectionState, options = {}) {
  const pool = new ClientPool()
  onTestFinished(() => pool.closeAll())
  let calls = 0
  const made = pool.make({
    url: s.wsUrl,
    token: () => {
      calls++
      return token()
    },
    connectTimeout: 2000,
    ...options,
  })
  made.client.connect()
  await vi.waitFor(() => expect(made.client.state).toBe(state), { timeout: 5000, interval: 50 }).catch(() => {})
  return { ...made, calls: () => calls }
}

describe('auth: the client with a token whose sub is no user id', () => {
  // The client copies the token's sub into the auth frame's userId: the server judges it against the
  // token (4001), and a 4001 after the one retry with a fresh token ends the client's attempts.
  for (const [what, sub] of [
    ['65 characters', 'u'.repeat(65)],
    ['a control character', 'ann\u0007'],
  ] as const) {
    it(`a sub of ${what} stops the client with an AuthError (4001), as any invalid token does`, async () => {
      const s = await start({ limits: { authTimeoutMs: 300 } })
      const { client, events, calls } = await tokenClient(s, () => signToken({ sub }), 'closed')
      const seen = events.errors.map((e) => `${e.name} ${e.code}: ${e.message}`)
      expect(client.state, `${calls()} token calls; errors: ${JSON.stringify(seen.slice(0, 2))}`).toBe('closed')
      expect(events.errors.at(-1)).toBeInstanceOf(AuthError)
      expect(events.errors.at(-1)).toMatchObject({ code: 4001 })
      expect(calls()).toBe(2) // the first token and one fresh one
    })
  }
})

describe('auth: a long token', () => {
  it('a signed token of over 8,192 characters (a topics claim of 400 grants) is taken: the client goes online', async () => {
    const s = await start({ authorizeSubscribe: topicsClaim(), limits: { authTimeoutMs: 300 } })
    const long = await grantsToken(400)
    expect(long.length).toBeGreaterThan(8192)
    expect(long.length).toBeLessThan(16_000) // within maxAuthFrameBytes (16 KiB)
    const { client, calls } = await tokenClient(s, () => long, 'online')
    expect(client.state).toBe('online')
    expect(calls()).toBe(1)
  })

  it('a token too large for maxAuthFrameBytes is refused as invalid (4001): the client stops, not retrying for ever', async () => {
    // Before auth a frame over maxAuthFrameBytes is not parsed: the only large thing an auth frame carries is its token.
    const s = await start({ authorizeSubscribe: topicsClaim(), limits: { authTimeoutMs: 300 } })
    const huge = await grantsToken(800)
    expect(huge.length).toBeGreaterThan(16 * 1024)
    const { client, events, calls } = await tokenClient(s, () => huge, 'closed', { backoff: { initial: 50, max: 100 } })
    expect(client.state, `${calls()} token calls; errors: ${events.errors.map((e) => e.message).slice(0, 2)}`).toBe('closed')
    expect(events.errors.at(-1)).toBeInstanceOf(AuthError)
    expect(events.errors.at(-1)).toMatchObject({ code: CloseCode.TokenInvalid, message: expect.stringContaining('maxAuthFrameBytes') })
    expect(calls()).toBe(2) // the first token and one fresh one
  })

  it('a token too large for maxFrameBytes (64 KiB), refused by ws with 1009 before auth, stops the client as invalid too', async () => {
    const s = await start({ authorizeSubscribe: topicsClaim() })
    const huge = await grantsToken(3500)
    expect(huge.length).toBeGreaterThan(64 * 1024)
    const { client, events, calls } = await tokenClient(s, () => huge, 'closed', { backoff: { initial: 50, max: 100 } })
    const reasons = events.statuses.filter((e) => e.to === 'reconnecting').map((e) => e.reason)
    expect(client.state, `${calls()} token calls; retries: ${reasons.length} (${[...new Set(reasons)]})`).toBe('closed')
    expect(events.errors.at(-1)).toBeInstanceOf(AuthError)
    // ws gives no reason: the error says the code.
    expect(events.errors.at(-1)).toMatchObject({ code: CloseCode.TooLarge, message: 'close 1009' })
    expect(calls()).toBe(2) // the first token and one fresh one
  })
})

describe('auth: session rules', () => {
  it('closes a connection that sends no auth frame within authTimeoutMs with 4008', async () => {
    const s = await start({ limits: { authTimeoutMs: 300 } })
    const c = await rawClient(s.wsUrl)
    const close = await c.closed
    expect(close.code).toBe(CloseCode.AuthTimeout)
    expect(c.frames).toEqual([])
    await vi.waitFor(() => expect(s.server.stats()).toMatchObject({ users: 0, connections: 0, sockets: 0 }))
  }, 5_000)

  it('answers frames before auth with not_authenticated and does not perform them', async () => {
    const s = await start()
    await s.server.sendToUser('carol', { title: 'unread', body: 'still unread' })
    const c = await rawClient(s.wsUrl)
    c.send({ type: 'mark_read', all: true, requestId: 'm1' })
    c.send({ type: 'history', limit: 10, requestId: 'h1' })
    c.send({ type: 'ack', seq: 1 })
    // A server that performed them would answer with read/history frames; stop there too.
    const first = await c.next((f) => f.type !== 'error' || f.code !== ErrorCode.NotAuthenticated || f.requestId === 'h1')
    expect(first).toMatchObject({ type: 'error', code: ErrorCode.NotAuthenticated, requestId: 'h1' })
    const m1 = await c.next((f) => f.type === 'error' && f.requestId === 'm1')
    const h1 = await c.next((f) => f.type === 'error' && f.requestId === 'h1')
    const ack = await c.next((f) => f.type === 'error' && f.requestId === undefined)
    for (const e of [m1, h1, ack]) expect(e).toMatchObject({ code: ErrorCode.NotAuthenticated, message: expect.any(String) })

    // Now authenticate on the same socket: nothing was marked read, and the ack did not move the cursor.
    c.send({ type: 'auth', token: await s.token('carol'), userId: 'carol' })
    const ok = await c.next((f) => f.type === 'auth_success')
    expect(ok).toMatchObject({ userId: 'carol', seq: 1, unreadCount: 1 })
    await c.next((f) => f.type === 'replayed' && f.more === false)
    expect(c.of('notification')).toEqual([expect.objectContaining({ seq: 1, title: 'unread', read: false })])
    expect(c.of('read')).toEqual([])
    expect(c.of('history')).toEqual([])
  })

  it('closes a live connection with 4002 when its token expires', async () => {
    const s = await start()
    const c = await rawClient(s.wsUrl)
    c.send({ type: 'auth', token: await s.token('dave', 2), userId: 'dave' })
    await c.next((f) => f.type === 'replayed' && f.more === false)
    expect(s.server.stats()).toMatchObject({ users: 1, connections: 1 })
    const close = await c.closed
    expect(close.code).toBe(CloseCode.TokenExpired)
    expect(c.of('auth_error')).toEqual([expect.objectContaining({ code: ErrorCode.TokenExpired })])
    await vi.waitFor(() => expect(s.server.stats()).toMatchObject({ users: 0, connections: 0, sockets: 0 }))
  }, 10_000)

  it('answers a second auth on an authenticated connection with already_authenticated and keeps it open', async () => {
    const s = await start()
    const c = await authedClient(s, 'erin')
    c.send({ type: 'auth', token: await s.token('frank'), userId: 'frank' })
    const error = await c.next((f) => f.type === 'error' || (f.type === 'auth_success' && f.userId === 'frank'))
    expect(error).toMatchObject({ type: 'error', code: ErrorCode.AlreadyAuthenticated })
    await roundTrip(c, 'p1')
    expect(c.of('auth_success')).toHaveLength(1)
    expect(s.server.stats()).toMatchObject({ users: 1, connections: 1, sockets: 1 })
    await s.server.sendToUser('erin', { title: 'still erin', body: '' })
    await expect(c.next((f) => f.type === 'notification')).resolves.toMatchObject({ title: 'still erin' })
  })
})

describe('auth: origin allowlist', () => {
  it('closes a socket from an origin not on the list with 4003', async () => {
    const s = await start({ allowedOrigins: ['https://app.example'] })
    const c = await rawClient(s.wsUrl, { origin: 'https://evil.example' })
    c.send({ type: 'auth', token: await s.token('alice'), userId: 'alice' })
    const close = await Promise.race([c.closed, c.next((f) => f.type === 'auth_success').then(() => ({ code: -1, reason: 'accepted' }))])
    expect(close.code).toBe(CloseCode.Forbidden)
    expect(c.of('auth_success')).toEqual([])
    await vi.waitFor(() => expect(s.server.stats()).toMatchObject({ users: 0, connections: 0, sockets: 0 }))
  })

  it('closes a socket that sends no Origin header (Node apps, server-to-server) with 4003', async () => {
    const s = await start({ allowedOrigins: ['https://app.example'] })
    const origins: (string | undefined)[] = []
    s.server.httpServer?.on('upgrade', (req) => origins.push(req.headers.origin))
    const c = await rawClient(s.wsUrl) // Node's ws sends an Origin only when given one
    expect(origins).toEqual([undefined])
    c.send({ type: 'auth', token: await s.token('alice'), userId: 'alice' })
    const close = await Promise.race([c.closed, c.next((f) => f.type === 'auth_success').then(() => ({ code: -1, reason: 'accepted' }))])
    expect(close.code).toBe(CloseCode.Forbidden)
    expect(c.of('auth_success')).toEqual([])
    await vi.waitFor(() => expect(s.server.stats()).toMatchObject({ users: 0, connections: 0, sockets: 0 }))
  })

  it('lets a socket from an allowed origin authenticate', async () => {
    const s = await start({ allowedOrigins: ['https://app.example'] })
    const c = await rawClient(s.wsUrl, { origin: 'https://app.example' })
    c.send({ type: 'auth', token: await s.token('alice'), userId: 'alice' })
    await expect(c.next((f) => f.type === 'auth_success')).resolves.toMatchObject({ userId: 'alice' })
    expect(s.server.stats()).toMatchObject({ users: 1, connections: 1 })
  })
})

describe('auth: per-user connection cap', () => {
  it('closes a connection over the cap with 4029 and a retry delay, other users unaffected', async () => {
    const s = await start({ limits: { maxConnectionsPerUser: 2 } })
    const first = await authedClient(s, 'alice')
    await authedClient(s, 'alice')
    const third = await rawClient(s.wsUrl)
    third.send({ type: 'auth', token: await s.token('alice'), userId: 'alice' })
    const error = await third.next((f) => f.type === 'auth_error' || f.type === 'auth_success')
    expect(error).toMatchObject({ type: 'auth_error', code: ErrorCode.RateLimited })
    const close = await third.closed
    expect(close.code).toBe(CloseCode.RateLimited)
    expect(close.reason).toContain('retry=')
    expect(parseRetryReason(close.reason)).toBeGreaterThan(0)

    const bob = await authedClient(s, 'bob')
    expect(bob.of('auth_success')).toHaveLength(1)
    expect(s.server.stats()).toMatchObject({ users: 2, connections: 3, sockets: 3 })

    // A freed slot can be taken again.
    first.close()
    await vi.waitFor(() => expect(s.server.stats().connections).toBe(2))
    const again = await authedClient(s, 'alice')
    expect(again.of('auth_success')).toEqual([expect.objectContaining({ userId: 'alice' })])
  })
})

describe("auth: the article's client", () => {
  it('connects to the root path, authenticates with userId + token, and receives sendToUser', async () => {
    const s = await start()
    const ws = await rawClient(`ws://127.0.0.1:${s.port}/`)
    // Exactly the article's auth frame.
    ws.send(
      JSON.stringify({
        type: 'auth',
        userId: 'user123',
        token: await s.token('user123'),
      }),
    )
    const ok = await ws.next((f) => f.type === 'auth_success')
    expect(ok).toMatchObject({ type: 'auth_success', userId: 'user123' })

    // The article's client does not wait for anything after auth_success.
    await s.server.sendToUser('user123', { title: 'New Message', body: 'You have received a new message', priority: 'high' })
    const n = await ws.next((f) => f.type === 'notification')
    expect(n).toMatchObject({ type: 'notification', title: 'New Message', body: 'You have received a new message', priority: 'high' })
    expect(typeof n.timestamp).toBe('string')
    expect(new Date(n.timestamp as string).toISOString()).toBe(n.timestamp)
  })
})

// Browsers send these in the Origin header as they are (a browser extension's page, a Tauri or Capacitor
// app's webview): `new URL(o).origin` is "null" for a scheme the URL standard does not know, so they
// must not be refused as "no origin as browsers send it".
describe('allowedOrigins: origins of schemes other than http(s)', () => {
  for (const origin of [
    'chrome-extension://abcdefghijklmnopabcdefghijklmnop',
    'moz-extension://0f2a5c1e-1234-4abc-9def-0123456789ab',
    'tauri://localhost',
    'capacitor://localhost',
  ]) {
    it(`takes ${origin}, and lets a socket from it authenticate`, async () => {
      const s = await start({ allowedOrigins: [origin] })
      const c = await rawClient(s.wsUrl, { origin })
      c.send({ type: 'auth', token: await s.token('alice'), userId: 'alice' })
      await expect(c.next((f) => f.type === 'auth_success')).resolves.toMatchObject({ userId: 'alice' })
      c.close()
    })
  }
})
