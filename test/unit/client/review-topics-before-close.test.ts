import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { cleanup, connected, createClient, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

/**
 * A subscription belongs to the user and outlives close() and the page (README, "Topics"): the
 * server keeps it, and topic publishes keep filling the user's inbox, until the function subscribe()
 * returned ends it. The client sends a task's topic changes together at the task's end. A change
 * made online in the same task as close() (a logout handler: give up the user's topics, then close)
 * must still reach the server, as the pending ack does (close() sends it first): there is no later
 * auth to send it after, so it is lost for good.
 */
describe('topic changes made online in the task of close()', () => {
  it('the unsubscribe goes out before the socket closes', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server))
    const stop = client.subscribe('alerts')
    await tick()
    expect(server.sent('subscribe')).toEqual([{ type: 'subscribe', topics: ['alerts'] }])

    stop()
    client.close()
    await tick()
    expect(server.sent('unsubscribe')).toEqual([{ type: 'unsubscribe', topics: ['alerts'] }])
  })

  it('the subscribe goes out before the socket closes', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server))
    client.subscribe('alerts')
    client.close()
    await tick()
    expect(server.sent('subscribe')).toEqual([{ type: 'subscribe', topics: ['alerts'] }])
  })
})
