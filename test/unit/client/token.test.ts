import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { BelfryError } from '../../../src/index.js'
import { advanceToAfterStatus, cleanup, connected, createClient, jwt, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

/** A promise with its resolve and reject outside. */
function deferred<T>() {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

describe('token provider', () => {
  it('is called on every connect and reconnect, and each auth frame carries the latest token', async () => {
    const server = startMockServer()
    const { client, tokens } = await connected(createClient(server, { backoff: () => 100 }))
    expect(tokens).toHaveLength(1)
    for (const code of [1006, 4000, 1001]) {
      server.peer.close(code)
      await tick(100 + 20)
      expect(client.state).toBe('online')
    }
    expect(tokens).toHaveLength(4)
    expect(new Set(tokens).size).toBe(4)
    expect(server.peers.map((p) => p.frames[0]?.token)).toEqual(tokens)
  })

  it('accepts an async provider', async () => {
    const server = startMockServer()
    const token = vi.fn(async () => jwt('u1'))
    const { client } = createClient(server, { token })
    client.connect()
    await tick()
    expect(client.state).toBe('online')
    expect(token).toHaveBeenCalledTimes(1)
    expect(server.peer.frames[0]).toMatchObject({ type: 'auth', token: jwt('u1') })
  })

  it('is never called twice at once: an online event during a slow call waits for the same call', async () => {
    vi.stubGlobal('window', new EventTarget())
    const server = startMockServer()
    const slow = deferred<string>()
    const token = vi.fn(() => slow.promise)
    const { client, log } = createClient(server, { token, connectTimeout: 1000, backoff: () => 100 })
    client.connect()
    await tick(300)

    // offline, then online: connects at once — and still waits for the same call.
    window.dispatchEvent(new Event('offline'))
    window.dispatchEvent(new Event('online'))
    expect(log.statuses.at(-1)).toMatchObject({ from: 'offline', to: 'connecting', reason: 'online' })
    await tick(500)
    expect(token).toHaveBeenCalledTimes(1)
    expect(server.peers).toHaveLength(0)

    slow.resolve(jwt('u1'))
    await tick()
    expect(client.state).toBe('online')
    expect(server.peers).toHaveLength(1) // the stale attempt did not open a socket of its own
    expect(token).toHaveBeenCalledTimes(1)

    // A later reconnect asks again.
    token.mockImplementation(async () => jwt('u1', { n: 2 }))
    server.peer.close(1006)
    await tick(100 + 20)
    expect(token).toHaveBeenCalledTimes(2)
    expect(server.peer.frames[0]).toMatchObject({ type: 'auth', token: jwt('u1', { n: 2 }) })
  })

  it("a call that has not answered within connectTimeout is given up: the retry (reason 'token or url failed', as a failed call's) asks afresh and gets online", async () => {
    const server = startMockServer()
    const token = vi
      .fn<() => Promise<string>>()
      .mockReturnValueOnce(new Promise(() => {}))
      .mockResolvedValue(jwt('u1'))
    const { client, log } = createClient(server, { token, connectTimeout: 200, backoff: () => 50 })
    client.connect()
    await tick(200)
    expect(log.statuses.at(-1)).toMatchObject({ to: 'reconnecting', reason: 'token or url failed' })
    expect(log.errors.map((e) => e.message)).toEqual(['url or token provider did not answer within connectTimeout'])
    await advanceToAfterStatus(log, 50)
    await tick()
    expect(client.state).toBe('online')
    expect(token).toHaveBeenCalledTimes(2)
    expect(server.peers).toHaveLength(1)
  })

  it('a given-up call that answers late does not let a second call start beside the one in flight', async () => {
    vi.stubGlobal('window', new EventTarget())
    const server = startMockServer()
    const first = deferred<string>()
    const second = deferred<string>()
    const token = vi.fn<() => Promise<string>>().mockReturnValueOnce(first.promise).mockReturnValueOnce(second.promise)
    const { client, log } = createClient(server, { token, connectTimeout: 1000, backoff: () => 100 })
    client.connect()
    await tick(1000)
    await advanceToAfterStatus(log, 100)
    expect(token).toHaveBeenCalledTimes(2)
    first.resolve(jwt('u1', { late: true }))
    await tick()
    // offline, then online while the second call is out: the new attempt waits for it.
    window.dispatchEvent(new Event('offline'))
    window.dispatchEvent(new Event('online'))
    await tick()
    expect(token).toHaveBeenCalledTimes(2)
    second.resolve(jwt('u1'))
    await tick()
    expect(client.state).toBe('online')
    expect(server.peers).toHaveLength(1)
    expect(server.peer.frames[0]).toMatchObject({ type: 'auth', token: jwt('u1') })
  })

  it('a failing provider is reported and retried with backoff', async () => {
    const server = startMockServer()
    const boom = new Error('token service down')
    const token = vi.fn<() => Promise<string>>().mockRejectedValueOnce(boom).mockResolvedValue(jwt('u1'))
    const { client, log } = createClient(server, { token })
    client.connect()
    await tick(5)
    expect(client.state).toBe('reconnecting')
    expect(log.statuses.at(-1)).toMatchObject({ from: 'connecting', to: 'reconnecting', reason: 'token or url failed', retryIn: 250 })
    expect(log.errors).toHaveLength(1)
    expect(log.errors[0]).toBeInstanceOf(BelfryError)
    expect(log.errors[0]?.cause).toBe(boom)
    expect(server.peers).toHaveLength(0)
    await advanceToAfterStatus(log, 250)
    await tick()
    expect(client.state).toBe('online')
    expect(token).toHaveBeenCalledTimes(2)
  })

  it('a url provider is called on every connect too', async () => {
    const server = startMockServer()
    const url = vi.fn(async () => server.url)
    const { client } = await connected(createClient(server, { url, backoff: () => 100 }))
    server.peer.close(1006)
    await tick(100 + 20)
    expect(client.state).toBe('online')
    expect(url).toHaveBeenCalledTimes(2)
  })
})
