import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { TimeoutError } from '../../../src/index.js'
import { advanceToAfterStatus, cleanup, connected, createClient, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

const transitions = (statuses: { from: string; to: string; reason: string }[]) => statuses.map((s) => [s.from, s.to, s.reason])

describe('connection state', () => {
  it('does no I/O before connect(), then goes idle → connecting → authenticating → online', async () => {
    const server = startMockServer()
    const { client, log, tokens } = createClient(server)
    await tick(1000)
    expect(client.state).toBe('idle')
    expect(server.peers).toHaveLength(0)
    expect(tokens).toHaveLength(0)

    client.connect()
    expect(client.state).toBe('connecting')
    await tick()
    expect(client.state).toBe('online')
    expect(transitions(log.statuses)).toEqual([
      ['idle', 'connecting', 'connect'],
      ['connecting', 'authenticating', 'open'],
      ['authenticating', 'online', 'auth'],
    ])
    expect(log.statuses.every((s) => s.attempt === 0 && s.retryIn === undefined)).toBe(true)
    expect(server.peer.frames[0]).toMatchObject({ type: 'auth', token: tokens[0] })
    expect(server.peer.frames[0]).toMatchObject({ since: 0 }) // nothing delivered yet: no cursor
  })

  it('ready() connects a client not yet connected and resolves once online', async () => {
    const server = startMockServer()
    const { client } = createClient(server)
    let ready = false
    void client.ready().then(() => {
      ready = true
    })
    expect(client.state).toBe('connecting')
    expect(ready).toBe(false)
    await tick()
    expect(ready).toBe(true)
    await expect(client.ready()).resolves.toBeUndefined()
  })

  it('ready({ timeout }) rejects with a TimeoutError, ready({ signal }) with the abort reason; the client carries on', async () => {
    let answer = (): void => {}
    const server = startMockServer({ auth: (peer) => (answer = () => peer.authSuccess()) })
    const { client } = createClient(server, { connectTimeout: 60_000 })
    const late = settleReady(client.ready({ timeout: 1000 }))
    const controller = new AbortController()
    const aborted = settleReady(client.ready({ signal: controller.signal }))
    await vi.advanceTimersByTimeAsync(999)
    expect(late.error).toBeUndefined()
    await vi.advanceTimersByTimeAsync(1)
    expect(late.error).toBeInstanceOf(TimeoutError)
    expect(late.error).toMatchObject({ message: 'not online within 1000 ms' })
    expect(aborted.error).toBeUndefined()
    controller.abort(new Error('user left the page'))
    await tick()
    expect(aborted.error).toMatchObject({ message: 'user left the page' })
    expect(client.state).toBe('authenticating')
    // An already aborted signal rejects at once; without a timeout, ready() keeps waiting.
    const already = settleReady(client.ready({ signal: AbortSignal.abort(new Error('gone')) }))
    const waiting = settleReady(client.ready())
    await tick()
    expect(already.error).toMatchObject({ message: 'gone' })
    answer()
    await tick()
    expect(waiting).toEqual({ done: true, error: undefined })
    expect(vi.getTimerCount()).toBeGreaterThan(0) // the client's own timers, not ready()'s
  })

  // A signal that is no AbortSignal (the AbortController itself) failed with the engine's words once ready() had set
  // its timer, whose cleanup then threw out of its callback (uncaught in Node); a NaN timeout never fired.
  it('ready() with a signal that is no AbortSignal, or a timeout that is no ms from 0, rejects with a TypeError and arms nothing', async () => {
    const server = startMockServer({ auth: false }) // never online
    const { client } = createClient(server, { connectTimeout: 60_000 })
    for (const [options, got] of [
      [{ signal: new AbortController(), timeout: 1000 }, '1000, object'],
      [{ signal: 'abort' }, 'undefined, "abort"'],
      [{ timeout: Number.NaN }, 'NaN, undefined'],
      [{ timeout: -1 }, '-1, undefined'],
    ] as const) {
      const error = await client.ready(options as never).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(TypeError)
      expect((error as Error).message).toBe(`belfry: ready() takes { timeout: ms from 0, signal: AbortSignal }; got ${got}`)
    }
    // Nothing armed: not connected, no timer (fake timers rethrow what a callback throws).
    expect(client.state).toBe('idle')
    expect(vi.getTimerCount()).toBe(0)
    await expect(vi.advanceTimersByTimeAsync(2000)).resolves.not.toThrow()
  })

  // Regression: ready() rejected only on a truthy abort reason, so abort(null) resolved it while not online.
  it('rejects on an abort whose reason is falsy (abort(null)), instead of resolving while not online', async () => {
    const server = startMockServer({ auth: false }) // never online
    const { client } = createClient(server)
    const controller = new AbortController()
    const outcome = client.ready({ signal: controller.signal }).then(
      () => 'resolved',
      () => 'rejected',
    )
    await tick()
    controller.abort(null)
    await tick()
    expect(client.state).not.toBe('online')
    expect(await outcome).toBe('rejected')
  })

  // Regression: setTimeout takes a delay past 2^31-1 ms as 1 ms, so ready({ timeout: Infinity }) rejected at once.
  it('ready({ timeout }) beyond setTimeout’s range (Infinity, 30 days) does not reject at once', async () => {
    const server = startMockServer({ auth: false }) // not online yet
    const { client } = createClient(server)
    const outcomes = [Number.POSITIVE_INFINITY, 30 * 24 * 3600 * 1000].map((timeout) =>
      client.ready({ timeout }).then(
        () => 'resolved',
        (e: Error) => e.name,
      ),
    )
    await tick(100)
    server.peer.authSuccess()
    await tick()
    expect(await Promise.all(outcomes)).toEqual(['resolved', 'resolved'])
  })

  it('goes online → reconnecting (with attempt and retryIn) → connecting → authenticating → online when the server drops', async () => {
    const server = startMockServer()
    const { client, log } = await connected(createClient(server))
    log.statuses.length = 0

    server.peer.close(1001, 'going away')
    await tick(5)
    expect(client.state).toBe('reconnecting')
    // random 0.5, first retry: floor(0.5 × 500)
    expect(log.statuses).toEqual([{ from: 'online', to: 'reconnecting', mode: 'solo', reason: 'close 1001', attempt: 1, retryIn: 250 }])

    await advanceToAfterStatus(log, 249)
    expect(client.state).toBe('reconnecting')
    expect(server.peers).toHaveLength(1)
    await advanceToAfterStatus(log, 250)
    expect(client.state).toBe('connecting')
    await tick()
    expect(client.state).toBe('online')
    expect(server.peers).toHaveLength(2)
    expect(transitions(log.statuses)).toEqual([
      ['online', 'reconnecting', 'close 1001'],
      ['reconnecting', 'connecting', 'retry'],
      ['connecting', 'authenticating', 'open'],
      ['authenticating', 'online', 'auth'],
    ])
  })

  it('gives up on a server that does not answer the auth frame within connectTimeout', async () => {
    const server = startMockServer({ auth: false })
    const { client, log } = createClient(server, { connectTimeout: 1000 })
    client.connect()
    await tick()
    expect(client.state).toBe('authenticating')
    await advanceToAfterStatus(log, 999)
    expect(client.state).toBe('authenticating')
    await advanceToAfterStatus(log, 1000)
    expect(client.state).toBe('reconnecting')
    expect(log.statuses.at(-1)).toMatchObject({ from: 'authenticating', to: 'reconnecting', reason: 'auth timeout', retryIn: 250 })
    await tick()
    expect(server.peers[0]?.closed).toBe(true)
  })

  it('close() goes to closed, is final and safe to call twice', async () => {
    const server = startMockServer()
    const { client, log } = await connected(createClient(server))
    client.close()
    expect(client.state).toBe('closed')
    expect(log.statuses.at(-1)).toEqual({ from: 'online', to: 'closed', mode: 'solo', reason: 'close', attempt: 0 })
    const events = log.statuses.length

    expect(() => client.close()).not.toThrow()
    client.connect()
    await tick(60_000)
    expect(client.state).toBe('closed')
    expect(server.peers).toHaveLength(1)
    expect(server.peer.closed).toBe(true)
    expect(log.statuses).toHaveLength(events)
    await expect(client.ready()).rejects.toMatchObject({ name: 'RequestError' })
  })

  it('close() from idle goes straight to closed without a socket', async () => {
    const server = startMockServer()
    const { client, log } = createClient(server)
    client.close()
    client.connect()
    await tick(1000)
    expect(transitions(log.statuses)).toEqual([['idle', 'closed', 'close']])
    expect(server.peers).toHaveLength(0)
  })

  it('connect() twice is a no-op', async () => {
    const server = startMockServer()
    const { client, log, tokens } = createClient(server)
    client.connect()
    client.connect()
    await tick()
    client.connect()
    await tick(1000)
    expect(client.state).toBe('online')
    expect(server.peers).toHaveLength(1)
    expect(tokens).toHaveLength(1)
    expect(log.statuses).toHaveLength(3)
  })

  it('emits status only on a real change', async () => {
    const server = startMockServer()
    const { client, log } = await connected(createClient(server, { backoff: () => 100 }))
    for (let i = 0; i < 3; i++) {
      server.peer.close(4000)
      await tick(100 + 20)
    }
    client.close()
    expect(log.statuses).toHaveLength(3 + 3 * 4 + 1)
    for (const s of log.statuses) expect(s.from).not.toBe(s.to)
    // Each event starts where the previous one ended.
    for (let i = 1; i < log.statuses.length; i++) expect(log.statuses[i]?.from).toBe(log.statuses[i - 1]?.to)
  })

  it('leaves no timer behind after close()', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server))
    const pending = client.history().catch((e: unknown) => e)
    await tick()
    client.close()
    await tick()
    expect(await pending).toMatchObject({ name: 'RequestError' })
    expect(vi.getTimerCount()).toBe(0)
  })

  // Between transport.open() and reconnecting-websocket's construction of the socket (its 0 ms wait) there is no
  // socket to close; close() in that window must still stop it (reconnecting-websocket #165). Here close() runs
  // in a 0 ms timer queued right after connect(), which lands in that window.
  it('close() right after connect() stays closed (transport close-before-socket window)', async () => {
    const server = startMockServer()
    const { client } = createClient(server)
    client.connect()
    setTimeout(() => client.close(), 0)
    await tick(100)
    expect(client.state).toBe('closed')
    expect(server.sent('auth')).toHaveLength(0)
  })
})

/** Records how a ready() promise settles. */
function settleReady(p: Promise<void>): { done: boolean; error: unknown } {
  const state: { done: boolean; error: unknown } = { done: false, error: undefined }
  p.then(
    () => {
      state.done = true
    },
    (error: unknown) => {
      state.done = true
      state.error = error
    },
  )
  return state
}
