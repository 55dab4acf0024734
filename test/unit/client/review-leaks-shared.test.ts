import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { sharedConnection } from '../../../src/shared/index.js'
import { FakeChannel, FakeLocks } from '../../helpers/locks.js'
import { cleanup, createClient, jwt, startMockServer, tick } from '../../helpers/mock-server.js'

/**
 * belfry/shared's leave() says it leaves "the lock (or the request for it)". A follower's request waits
 * behind the leader's lock for as long as that leader leads: a follower that leaves its group (its client
 * closed, as a provider remounted or an app signing out does; its token naming another user) must withdraw
 * that request, or each one stays queued in the tab's lock manager, holding the closed connection (and its
 * client) until the leader goes, which may be days.
 */
beforeEach(() => {
  vi.useFakeTimers()
  FakeChannel.reset()
})
afterEach(cleanup)

/** A tab's lock manager whose requests are counted while pending: made, neither granted nor settled. */
function counting(locks: FakeLocks, tab: string) {
  const inner = locks.forTab(tab)
  let pending = 0
  const manager = {
    query: inner.query.bind(inner),
    request: ((name: string, options: LockOptions, callback: LockGrantedCallback<unknown>) => {
      let waiting = true
      pending++
      const done = () => {
        if (waiting) pending--
        waiting = false
      }
      const p = inner.request(name, options, (lock) => {
        done()
        return callback(lock)
      })
      p.then(done, done)
      return p
    }) as LockManager['request'],
  } as LockManager
  return { manager, pending: () => pending }
}

const channel = FakeChannel as unknown as typeof BroadcastChannel

describe('belfry/shared: a follower that leaves its group withdraws its lock request', () => {
  it('200 follower clients made and closed in one tab leave no lock request queued behind the leader', async () => {
    const server = startMockServer()
    const locks = new FakeLocks()
    const leader = createClient(server, { connection: sharedConnection({ locks: locks.forTab('a'), BroadcastChannel: channel }) })
    leader.client.connect()
    await tick(100)
    expect(leader.client.mode).toBe('leader')
    const tabB = counting(locks, 'b')
    for (let i = 0; i < 200; i++) {
      const { client } = createClient(server, {
        token: jwt('u1'),
        connection: sharedConnection({ locks: tabB.manager, BroadcastChannel: channel }),
      })
      client.connect()
      await tick(40)
      expect([client.mode, client.state]).toEqual(['follower', 'online'])
      client.close()
      await tick()
    }
    expect(leader.client.mode).toBe('leader')
    expect(tabB.pending()).toBe(0)
  }, 60_000)

  it('a tab whose token switches users 100 times leaves no request for the groups it left', async () => {
    const server = startMockServer()
    const locks = new FakeLocks()
    // A leader of each user's group, in another tab.
    for (const user of ['u1', 'u2']) {
      const l = createClient(server, {
        token: jwt(user),
        backoff: () => 100,
        connection: sharedConnection({ locks: locks.forTab(`a-${user}`), BroadcastChannel: channel }),
      })
      l.client.connect()
      await tick(100)
      expect(l.client.mode).toBe('leader')
    }
    const tabB = counting(locks, 'b')
    let user = 'u1'
    const { client } = createClient(server, {
      token: () => jwt(user),
      connection: sharedConnection({ locks: tabB.manager, BroadcastChannel: channel }),
    })
    // The group the tab is in: the user of the last auth its client made (it follows, so its own token's).
    let joined = 'u1'
    client.on('status', (e) => {
      if (e.to === 'online') joined = user
    })
    client.connect()
    await tick(100)
    expect([client.mode, client.state]).toEqual(['follower', 'online'])
    for (let i = 0; i < 100; i++) {
      user = user === 'u1' ? 'u2' : 'u1'
      // The leader's socket drops: the follower asks its token who its user is, and moves to the other user's group.
      for (const peer of server.peers) if (!peer.closed) peer.close(1012)
      for (let t = 0; t < 100 && !(client.state === 'online' && joined === user); t++) await tick(50)
      expect([client.mode, client.state, joined]).toEqual(['follower', 'online', user])
    }
    // The tab waits for one lock: its own group's.
    expect(tabB.pending()).toBe(1)
  }, 60_000)
})
