import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { sharedConnection } from '../../src/shared/index.js'
import { FakeChannel, FakeLocks } from '../helpers/locks.js'
import { cleanup, createClient, jwt, startMockServer, tick } from '../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
  FakeChannel.reset()
})
afterEach(cleanup)

const shared = (locks: FakeLocks, tab: string) =>
  sharedConnection({ locks: locks.forTab(tab), BroadcastChannel: FakeChannel as unknown as typeof BroadcastChannel })

/**
 * A follower that is handed the lock (its leader's tab closed) tells its app `online → connecting` (mode leader)
 * synchronously inside socket.connect(), before lead() has armed `stepDown`. An app that closes the client on that
 * status event (e.g. it closes on any status once signed out) runs leave() with no `stepDown` to call: the new
 * socket is never closed and the lock is never released, by a tab that says it is closed.
 */
describe('belfry/shared: close() from a status handler as the tab starts to lead', () => {
  it('closes the socket it just opened and lets the lock go', async () => {
    const server = startMockServer()
    const locks = new FakeLocks()
    const a = createClient(server, { token: () => jwt('u1'), connection: shared(locks, 'a') })
    a.client.connect()
    await tick(100)
    const b = createClient(server, { token: () => jwt('u1'), connection: shared(locks, 'b') })
    let signedOut = false
    let closedOn: object | undefined
    b.client.on('status', (e) => {
      if (!signedOut || closedOn) return
      closedOn = { from: e.from, to: e.to, mode: e.mode }
      b.client.close()
    })
    b.client.connect()
    await tick(100)
    expect([a.client.mode, b.client.mode, b.client.state]).toEqual(['leader', 'follower', 'online'])
    expect(server.peers.length).toBe(1)

    // The user signs out: tab b's app closes its client at its next status event. Tab a closes: b gets the lock.
    signedOut = true
    a.client.close()
    await tick(2000)
    expect(b.client.state).toBe('closed')
    expect(closedOn).toEqual({ from: 'online', to: 'connecting', mode: 'leader' })
    // Tab b is closed: no socket of its is left open, and it holds no lock.
    expect(server.peers.filter((p) => !p.closed).length).toBe(0)
    expect(locks.holder(`belfry:${server.url}#u1`)).toBeUndefined()
  })
})
