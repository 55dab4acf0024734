/**
 * Failures that speak: a connection attempt that fails before the socket opens
 * is reported on `error` (a ConnectionError with what the platform knows), the
 * first time and then every tenth time in a row, while retrying goes on; one
 * whose url or token provider does not answer says that instead.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { BelfryError, ConnectionError } from '../../src/index.js'
import { ClientPool } from '../helpers/client.js'
import { useServer } from '../helpers/server.js'

const start = useServer()
const clients = new ClientPool()
afterEach(() => clients.closeAll())

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  const { port } = srv.address() as AddressInfo
  await new Promise((resolve) => srv.close(resolve))
  return port
}

describe('a connection attempt that fails is reported', () => {
  it('a wrong path: the HTTP status the server answered', async () => {
    const s = await start()
    const url = `ws://127.0.0.1:${s.port}/socket`
    const { client, events } = clients.make({ url, token: () => s.token('ann') })
    client.connect()
    await vi.waitFor(() => expect(events.errors).toHaveLength(1))
    expect(events.errors[0]).toBeInstanceOf(ConnectionError)
    expect(events.errors[0]!.message).toBe(`cannot connect to ${url}: Unexpected server response: 404`)
    expect(events.errors[0]!.code).toBe(1006)
    expect(client.state).not.toBe('closed')
  })

  it('a stopped server: the connection is refused', async () => {
    const url = `ws://127.0.0.1:${await closedPort()}/ws`
    const { client, events } = clients.make({ url, token: 't' })
    client.connect()
    await vi.waitFor(() => expect(events.errors).toHaveLength(1))
    expect(events.errors[0]!.message).toMatch(new RegExp(`^cannot connect to ${url}: connect ECONNREFUSED`))
  })

  it('wss:// against a plain server: the TLS handshake fails', async () => {
    const s = await start()
    const url = `wss://127.0.0.1:${s.port}/ws`
    const { client, events } = clients.make({ url, token: () => s.token('ann') })
    client.connect()
    await vi.waitFor(() => expect(events.errors).toHaveLength(1))
    expect(events.errors[0]).toBeInstanceOf(ConnectionError)
    expect(events.errors[0]!.message).toMatch(new RegExp(`^cannot connect to ${url}: .+`))
  })

  it('says so the first time and every tenth time in a row, not on every retry, and starts over once online', async () => {
    const url = `ws://127.0.0.1:${await closedPort()}/ws`
    const { client, events } = clients.make({ url, token: 't', backoff: () => 5 })
    client.connect()
    await vi.waitFor(() => expect(events.count('reconnecting')).toBeGreaterThanOrEqual(21), { timeout: 10_000 })
    client.close()
    const attempts = events.count('reconnecting')
    expect(events.errors).toHaveLength(Math.ceil(attempts / 10))
  })

  it('a token provider that never answers: the error says so at connectTimeout, not a ConnectionError to no URL; the retry carries the reason a failed provider’s does', async () => {
    const s = await start()
    const hung = () => new Promise<string>(() => {})
    const { client, events } = clients.make({ url: s.wsUrl, token: hung, connectTimeout: 300 })
    client.connect()
    await vi.waitFor(() => expect(events.errors.length).toBeGreaterThanOrEqual(1), { timeout: 3000 })
    const error = events.errors[0]!
    expect(s.server.stats().sockets).toBe(0) // nothing was tried against the server
    expect(error).not.toBeInstanceOf(ConnectionError)
    expect([error.constructor, error.message]).toEqual([BelfryError, 'url or token provider did not answer within connectTimeout'])
    // As a failing provider's: no server was tried (belfry/shared steps a leader down on it).
    expect(events.statuses.find((e) => e.to === 'reconnecting')?.reason).toBe('token or url failed')
  })

  it('a token provider that stops answering after the client was online: the same error, not the last URL with connect timeout', async () => {
    const s = await start()
    let hang = false
    const token = () => (hang ? new Promise<string>(() => {}) : s.token('ann'))
    const { client, events } = await clients.online({ url: s.wsUrl, token, connectTimeout: 300 })
    hang = true
    await s.stop()
    await vi.waitFor(() => expect(events.errors.length).toBeGreaterThanOrEqual(1), { timeout: 3000 })
    expect(events.errors.map((e) => [e.name, e.message])).toContainEqual([
      'BelfryError',
      'url or token provider did not answer within connectTimeout',
    ])
    expect(events.errors.filter((e) => e instanceof ConnectionError)).toEqual([])
    expect(client.state).not.toBe('closed')
  })
})

describe('a client not connected yet', () => {
  it('connects on its first request instead of waiting for a reply that cannot come', async () => {
    const s = await start()
    await s.server.sendToUser('ann', { title: 'hello', body: '' })
    const { client } = clients.make({ url: s.wsUrl, token: () => s.token('ann') })
    const page = await client.history({ limit: 5 })
    expect(page.items.map((n) => n.title)).toEqual(['hello'])
    expect(client.state).toBe('online')
  })
})
