import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { cleanup, connected, createClient, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

describe('topic subscriptions', () => {
  it('sends a subscription made before connecting once, after auth', async () => {
    const server = startMockServer()
    const t = createClient(server)
    t.client.subscribe('deploys')
    await connected(t)
    await tick()
    expect(server.sent('subscribe')).toEqual([{ type: 'subscribe', topic: 'deploys' }])
  })

  it('sends a subscription made online at once, and an unsubscribe made offline after the next auth', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server))
    const stop = client.subscribe('alerts')
    await tick()
    expect(server.sent('subscribe')).toEqual([{ type: 'subscribe', topic: 'alerts' }])
    server.peer.close(1006)
    await tick()
    expect(client.state).toBe('reconnecting')
    stop()
    await vi.waitFor(async () => {
      await tick(100)
      expect(server.sent('unsubscribe')).toHaveLength(1)
    })
    // Not restored: it was given up while offline.
    expect(server.sent('subscribe')).toHaveLength(1)
  })
})
