import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { memoryStorage } from '../../../src/index.js'
import { cleanup, connected, createClient, startMockServer, tick } from '../../helpers/mock-server.js'

/**
 * README ("Events"/status) and src/client/link.ts (StatusEvent.expired): "With `online`: true when the server's
 * retention removed notifications that followed this client's cursor before it got them". docs/protocol.md,
 * "belfry's client against the article's server": that server has no seq, no retention, no `oldestSeq`; the
 * client works live only "for that connection". An `online` event on the article's server cannot say `expired`:
 * nothing of this client's cursor was removed there. It did, repeating the last belfry auth's word at every
 * online on the article's server that follows it (a load balancer that mixes both during a migration, or a
 * rollback to the article's server).
 */

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

describe('the article’s server after a belfry server whose retention expired the cursor', () => {
  it('its online status event does not say expired', async () => {
    const storage = memoryStorage()
    storage.setItem('belfry:cursor:u1', '5')
    const server = startMockServer({
      auth: (peer) =>
        peer.index === 0
          ? // belfry's server: retention removed everything up to 8; the client's cursor is 5.
            peer.send({ type: 'auth_success', message: 'ok', userId: 'u1', seq: 10, unreadCount: 0, oldestSeq: 8, pingAcks: true })
          : peer.send({ type: 'auth_success', message: 'Connected to notification service' }),
    })
    const { client, log } = await connected(createClient(server, { storage, backoff: () => 100 }))
    expect(log.statuses.filter((s) => s.to === 'online').map((s) => s.expired)).toEqual([true])
    server.peer.close(1006)
    await tick(200)
    expect(client.state).toBe('online')
    expect(server.peers).toHaveLength(2)
    const onlines = log.statuses.filter((s) => s.to === 'online')
    expect(onlines).toHaveLength(2)
    expect(onlines[1]!.expired).toBeFalsy()
  })
})
