import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { cleanup, connected, createClient, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

// README ("The client"): 4029 → retry after the delay in the reason, "held between the backoff's delay
// and 10 minutes"; docs/protocol.md: backoff only "without a retry= in the reason, or with retry=0".
// The client reads at most 9 digits: a hint of 10 (1,000,000,000 ms and more, a proxy's "come back in a
// month") is taken for no hint at all, and the client is back within the backoff's first delay.
describe('a 4029 whose retry hint has more than 9 digits', () => {
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
