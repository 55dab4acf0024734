import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { cleanup, connected, createClient, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

describe('absurd retry hints in a 4029 close reason', () => {
  // As retry=0 once did (close-codes.test): a tiny delay, taken as given, on every 4029 in a row.
  it('retry=1 on every attempt does not bring a reconnect storm: the delays still grow', async () => {
    const server = startMockServer({ auth: (peer) => peer.close(4029, 'rate limited; retry=1') })
    const { client } = createClient(server)
    client.connect()
    await tick(2000)
    // With backoff (250, 500, 1000 ms here) four attempts at most; taken as given, a new socket every few ms.
    expect(server.peers.length).toBeLessThanOrEqual(5)
  })

  it('retry=999999999 (11.6 days) does not take the client off the air for days: the wait is bounded', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server))
    server.peer.close(4029, 'rate limited; retry=999999999')
    await tick(5)
    // Nothing shortens a 4029's delay (not online, not visible): a hostile or buggy hint is waited out in full.
    await tick(60 * 60 * 1000)
    expect(server.peers.length).toBeGreaterThan(1)
    expect(client.state).toBe('online')
  })
})

describe('a 4029 whose retry hint has more than 9 digits', () => {
  // Regression: the hint was read to 9 digits, and a longer one taken for none: back within the backoff's first delay.
  it('retry=2592000000 (30 days) waits the 10 minutes a long hint is held to, not the backoff', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server))
    server.peer.close(4029, 'rate limited; retry=2592000000')
    await tick(5)
    expect(client.state).toBe('reconnecting')
    // Well past any first backoff (the mock's first retry waits 250 ms), well short of 10 minutes.
    await tick(60_000)
    expect(server.peers.length).toBe(1)
    // And back after the 10 minutes.
    await tick(10 * 60_000)
    expect(server.peers.length).toBeGreaterThan(1)
  })
})
