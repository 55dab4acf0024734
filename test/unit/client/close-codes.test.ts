import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { AuthError } from '../../../src/index.js'
import { advanceToAfterStatus, cleanup, connected, createClient, jwt, note, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

describe('close codes (the table in docs/protocol.md)', () => {
  it.each([1001, 1006, 1009, 4000, 4008, 4009])('%i → reconnect with backoff, resuming from the cursor', async (code) => {
    const server = startMockServer()
    const { client, log, tokens } = await connected(createClient(server))
    server.peer.send(note(1))
    server.peer.send(note(2))
    server.peer.close(code, 'bye')
    await tick(5)
    expect(client.state).toBe('reconnecting')
    expect(log.statuses.at(-1)).toEqual({
      from: 'online',
      to: 'reconnecting',
      mode: 'solo',
      reason: `close ${code}`,
      attempt: 1,
      retryIn: 250,
    })

    await advanceToAfterStatus(log, 249)
    expect(server.peers).toHaveLength(1)
    await advanceToAfterStatus(log, 250)
    await tick()
    expect(client.state).toBe('online')
    expect(tokens).toHaveLength(2)
    expect(server.peer.frames[0]).toMatchObject({ type: 'auth', token: tokens[1], since: 2 })
    expect(log.errors).toEqual([])
  })

  it('4002 → fresh token and reconnect at once; a second 4002 in a row → backoff', async () => {
    let connections = 0
    const server = startMockServer({
      auth: (peer) => {
        // 1st: accepted, then expires while online. 2nd and 3rd: refused as expired. 4th: accepted.
        connections++
        if (connections === 1 || connections === 4) peer.authSuccess()
        else peer.close(4002, 'token expired')
      },
    })
    const { client, log, tokens } = await connected(createClient(server))
    log.statuses.length = 0

    server.peer.close(4002, 'token expired')
    await tick(5)
    // No reconnecting state, no wait: straight back to connecting.
    expect(log.statuses).toEqual([{ from: 'online', to: 'connecting', mode: 'solo', reason: 'token expired', attempt: 0 }])
    expect(tokens).toHaveLength(2)
    await tick(10)
    expect(server.peers).toHaveLength(2)
    expect(server.peer.frames[0]).toMatchObject({ type: 'auth', token: tokens[1] })
    expect(tokens[1]).not.toBe(tokens[0])

    // The fresh token is refused as expired too: no second immediate retry.
    await tick()
    expect(client.state).toBe('reconnecting')
    expect(log.statuses.at(-1)).toMatchObject({ to: 'reconnecting', reason: 'close 4002', retryIn: 250 })
    await advanceToAfterStatus(log, 249)
    expect(server.peers).toHaveLength(2)
    await advanceToAfterStatus(log, 250)
    await tick()
    // 3rd connection: refused again, backoff again.
    expect(log.statuses.at(-1)).toMatchObject({ to: 'reconnecting', reason: 'close 4002', attempt: 2 })
    await advanceToAfterStatus(log, 10_000)
    expect(client.state).toBe('online')
    expect(tokens).toHaveLength(4)
    expect(log.errors).toEqual([])
  })

  it('4002 after a re-auth that stayed online for minUptime gets its immediate retry again; one sooner backs off', async () => {
    const server = startMockServer()
    const { client, log, tokens } = await connected(createClient(server))
    for (let i = 0; i < 3; i++) {
      await tick(5000) // minUptime online
      server.peer.close(4002)
      await tick()
      expect(client.state).toBe('online')
    }
    expect(tokens).toHaveLength(4)
    expect(log.statuses.filter((s) => s.to === 'reconnecting')).toEqual([])
    // Closed again right after its immediate retry went online: the backoff, not another at once.
    server.peer.close(4002)
    await tick()
    expect(client.state).toBe('reconnecting')
    expect(tokens).toHaveLength(4)
  })

  it('4001 → one immediate retry with a fresh token, then closed for good', async () => {
    const server = startMockServer({
      auth: (peer) => {
        peer.send({ type: 'auth_error', code: 'token_invalid', message: 'bad signature' })
        peer.close(4001, 'token invalid')
      },
    })
    const { client, log, tokens } = createClient(server)
    client.connect()
    await tick(50)
    expect(client.state).toBe('closed')
    expect(log.statuses.map((s) => [s.from, s.to, s.reason])).toEqual([
      ['idle', 'connecting', 'connect'],
      ['connecting', 'authenticating', 'open'],
      // No reconnecting state, no wait: straight back to connecting, with a fresh token.
      ['authenticating', 'connecting', 'token invalid'],
      ['connecting', 'authenticating', 'open'],
      ['authenticating', 'closed', 'auth failed'],
    ])
    // The second socket opened within mock-socket's hops, not after a backoff (≥ 250 ms here).
    expect((log.statusTimes[3] ?? 0) - (log.statusTimes[2] ?? 0)).toBeLessThan(20)
    expect(tokens).toHaveLength(2)
    expect(tokens[1]).not.toBe(tokens[0])
    expect(log.statuses.at(-1)).toMatchObject({ from: 'authenticating', to: 'closed', reason: 'auth failed' })
    expect(server.peers.map((p) => p.frames[0]?.token)).toEqual(tokens)
    expect(log.statuses.some((s) => s.to === 'reconnecting')).toBe(false)

    await tick(120_000)
    expect(server.peers).toHaveLength(2)
    expect(tokens).toHaveLength(2)
  })

  it('4001 with a static token → closed at once, no retry', async () => {
    const server = startMockServer({ auth: (peer) => peer.close(4001, 'token invalid') })
    const { client, log } = createClient(server, { token: jwt('u1') })
    client.connect()
    await tick()
    expect(client.state).toBe('closed')
    expect(log.statuses.at(-1)).toMatchObject({ from: 'authenticating', to: 'closed', reason: 'auth failed' })
    await tick(120_000)
    expect(server.peers).toHaveLength(1)
  })

  it('4003 → closed at once, even with a token function', async () => {
    const server = startMockServer({ auth: (peer) => peer.close(4003, 'forbidden') })
    const { client, log, tokens } = createClient(server)
    client.connect()
    await tick()
    expect(client.state).toBe('closed')
    expect(log.statuses.at(-1)).toMatchObject({ to: 'closed', reason: 'auth failed' })
    await tick(120_000)
    expect(server.peers).toHaveLength(1)
    expect(tokens).toHaveLength(1)
  })

  // Regression: while authenticating, only auth_success and auth_error were read; an `error` frame in answer to
  // the auth frame (a server that finds it malformed) was dropped, and the client waited out connectTimeout silently.
  it('an error frame in answer to the auth frame → error event with a ProtocolError carrying its code and message', async () => {
    const server = startMockServer({
      auth: (peer) => peer.send({ type: 'error', code: 'bad_frame', message: 'auth.token must be a string' }),
    })
    const { client, log } = createClient(server)
    client.connect()
    await tick(50)
    expect(client.state).toBe('authenticating')
    expect(log.errors).toEqual([
      expect.objectContaining({ name: 'ProtocolError', code: 'bad_frame', message: 'auth.token must be a string' }),
    ])
  })

  // Link.#fail must report before it closes: the close clears the app's listeners and rejects what waits
  // with #fatal (an AuthError emitted after the close reached nobody, and ready() rejected with a RequestError).
  describe('the AuthError of 4001 and 4003', () => {
    it('4001 twice → error event with an AuthError, code 4001, carrying the auth_error message', async () => {
      const server = startMockServer({
        auth: (peer) => {
          peer.send({ type: 'auth_error', code: 'token_invalid', message: 'bad signature' })
          peer.close(4001, 'token invalid')
        },
      })
      const { client, log } = createClient(server)
      client.connect()
      await tick(50)
      expect(client.state).toBe('closed')
      expect(log.errors).toHaveLength(1)
      expect(log.errors[0]).toBeInstanceOf(AuthError)
      expect(log.errors[0]).toMatchObject({ name: 'AuthError', code: 4001, message: 'bad signature' })
    })

    it('4001 with a static token → error event with an AuthError at once', async () => {
      const server = startMockServer({ auth: (peer) => peer.close(4001, 'token invalid') })
      const { client, log } = createClient(server, { token: jwt('u1') })
      client.connect()
      await tick()
      expect(log.errors).toEqual([expect.objectContaining({ name: 'AuthError', code: 4001 })])
    })

    it('4003 → error event with an AuthError, code 4003', async () => {
      const server = startMockServer({ auth: (peer) => peer.close(4003, 'forbidden') })
      const { client, log } = createClient(server)
      client.connect()
      await tick()
      expect(log.errors).toEqual([expect.objectContaining({ name: 'AuthError', code: 4003, message: 'forbidden' })])
    })

    it('4003 → ready() and pending requests reject with the AuthError', async () => {
      const server = startMockServer({ auth: (peer) => peer.close(4003, 'forbidden') })
      const { client } = createClient(server)
      const ready = client.ready().catch((e: unknown) => e)
      const request = client.history().catch((e: unknown) => e)
      client.connect()
      await tick()
      expect(await ready).toMatchObject({ name: 'AuthError', code: 4003 })
      expect(await request).toMatchObject({ name: 'AuthError', code: 4003 })
    })
  })

  it('4029 → waits the delay the close reason gives', async () => {
    const server = startMockServer()
    const { client, log } = await connected(createClient(server))
    server.peer.close(4029, 'rate limited; retry=7000')
    await tick(5)
    expect(log.statuses.at(-1)).toMatchObject({ to: 'reconnecting', reason: 'close 4029', retryIn: 7000 })
    await advanceToAfterStatus(log, 6999)
    expect(client.state).toBe('reconnecting')
    expect(server.peers).toHaveLength(1)
    await advanceToAfterStatus(log, 7000)
    expect(client.state).toBe('connecting')
    await tick()
    expect(client.state).toBe('online')
  })

  // Regression: retry=0 was taken as the delay, and every 4029 brought an immediate retry.
  it('4029 with retry=0 → backoff, not an immediate retry', async () => {
    const server = startMockServer({ auth: (peer) => peer.close(4029, 'rate limited; retry=0') })
    const { client, log } = createClient(server)
    client.connect()
    await tick(1000)
    expect(log.statuses.filter((e) => e.to === 'reconnecting').map((e) => e.retryIn)).toEqual([250, 500, 1000])
    expect(server.peers).toHaveLength(3)
  })

  it('4029 without a delay in the reason → backoff', async () => {
    const server = startMockServer()
    const { log } = await connected(createClient(server))
    server.peer.close(4029, 'too many connections')
    await tick(5)
    expect(log.statuses.at(-1)).toMatchObject({ to: 'reconnecting', reason: 'close 4029', retryIn: 250 })
  })
})
