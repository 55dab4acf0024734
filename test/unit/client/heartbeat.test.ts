import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { advanceToAfterStatus, cleanup, connected, createClient, note, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

describe('heartbeat', () => {
  it('sends a ping every pingInterval while online', async () => {
    const server = startMockServer()
    const { log } = await connected(createClient(server, { pingInterval: 1000 }))
    const pings = () => server.sent('ping').length
    await advanceToAfterStatus(log, 1000 - 1)
    expect(pings()).toBe(0)
    await advanceToAfterStatus(log, 1000 + 5)
    expect(pings()).toBe(1)
    await advanceToAfterStatus(log, 2000 + 5)
    expect(pings()).toBe(2)
    await advanceToAfterStatus(log, 10_000 + 5)
    expect(pings()).toBe(10)
    expect(server.sent('ping')[0]).toEqual({ type: 'ping' })
  })

  it('a pong in time keeps the connection', async () => {
    const server = startMockServer({ pong: true })
    const { client, log } = await connected(createClient(server, { pingInterval: 1000, pongTimeout: 500 }))
    await tick(20_000)
    expect(client.state).toBe('online')
    expect(server.peers).toHaveLength(1)
    expect(log.statuses.at(-1)?.to).toBe('online')
    expect(server.sent('ping').length).toBeGreaterThanOrEqual(19)
  })

  it('no frame within pongTimeout → drops the connection and reconnects with reason pong timeout', async () => {
    const server = startMockServer({ pong: false })
    const { client, log } = await connected(createClient(server, { pingInterval: 1000, pongTimeout: 500 }))
    await advanceToAfterStatus(log, 1000 + 500 - 1)
    expect(client.state).toBe('online')
    expect(server.sent('ping')).toHaveLength(1)
    await advanceToAfterStatus(log, 1000 + 500)
    expect(client.state).toBe('reconnecting')
    expect(log.statuses.at(-1)).toEqual({
      from: 'online',
      to: 'reconnecting',
      mode: 'solo',
      reason: 'pong timeout',
      attempt: 1,
      retryIn: 250,
    })
    await tick()
    expect(server.peers[0]?.closed).toBe(true) // the possibly half-open socket was given up

    await advanceToAfterStatus(log, 250)
    await tick()
    expect(client.state).toBe('online')
    expect(server.peers).toHaveLength(2)
  })

  it('any frame counts as a sign of life, not only pong', async () => {
    const server = startMockServer({ pong: false })
    const { client, log } = await connected(createClient(server, { pingInterval: 1000, pongTimeout: 500 }))
    await advanceToAfterStatus(log, 1000 + 100)
    server.peer.send(note(1))
    // Past the deadline of the first ping's pong (1500), but before the next ping's (2500).
    await advanceToAfterStatus(log, 2000)
    expect(client.state).toBe('online')
    expect(log.notifications).toHaveLength(1)
    // The pong timeout never fired: no move away from online, and still the first socket.
    expect(log.statuses.map((s) => s.to)).toEqual(['connecting', 'authenticating', 'online'])
    expect(server.peers).toHaveLength(1)
    expect(server.peer.closed).toBe(false)
  })

  it('sends no ping while not online', async () => {
    const server = startMockServer({ auth: false })
    const { client } = createClient(server, { pingInterval: 1000, connectTimeout: 60_000 })
    client.connect()
    await tick(10_000)
    expect(client.state).toBe('authenticating')
    expect(server.sent('ping')).toEqual([])
  })

  it('does not ping an article-protocol server (it answers no ping)', async () => {
    const server = startMockServer({ auth: (peer) => peer.send({ type: 'auth_success', message: 'ok', userId: 'u1' }) })
    const { client } = await connected(createClient(server, { pingInterval: 1000, pongTimeout: 500 }))
    await tick(10_000)
    expect(client.state).toBe('online')
    expect(server.sent('ping')).toEqual([])
  })

  it('detects a dead connection even with pongTimeout ≥ pingInterval: a later ping does not move the deadline', async () => {
    const server = startMockServer({ pong: false })
    const { client, log } = await connected(createClient(server, { pingInterval: 1000, pongTimeout: 2500 }))
    await advanceToAfterStatus(log, 1000 + 2500 - 5)
    expect(client.state).toBe('online')
    expect(server.sent('ping')).toHaveLength(3)
    await advanceToAfterStatus(log, 1000 + 2500 + 5)
    expect(log.statuses.at(-1)).toMatchObject({ to: 'reconnecting', reason: 'pong timeout' })
  })
})
