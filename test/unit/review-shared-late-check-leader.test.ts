import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { sharedConnection } from '../../src/shared/index.js'
import { FakeChannel, FakeLocks } from '../helpers/locks.js'
import { cleanup, createClient, jwt, startMockServer, tick } from '../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
  FakeChannel.reset()
})
afterEach(cleanup)

/**
 * b12d21c: a follower's user check answered late counts only if no newer answer was gone by since. `check` is
 * cleared only when the tab leaves its group, so a tab that has since led, its socket's own (newer) token naming the
 * group's user, still goes by the old check's answer: its live socket is torn down and it moves to another group.
 */
describe('belfry/shared: a late user check once the tab leads, its own socket’s token naming the group’s user', () => {
  it('is ignored: the tab keeps leading in its group', async () => {
    const server = startMockServer()
    const locks = new FakeLocks()
    const leader = createClient(server, {
      connection: sharedConnection({ locks: locks.forTab('a'), BroadcastChannel: FakeChannel as unknown as typeof BroadcastChannel }),
    })
    leader.client.connect()
    await tick(100)
    const groups: string[] = []
    let held: ((token: string) => void) | null | undefined
    const follower = createClient(server, {
      token: () => (held === null ? new Promise<string>((r) => (held = r)) : jwt('u1')),
      connectTimeout: 1000,
      connection: sharedConnection({
        locks: locks.forTab('b'),
        BroadcastChannel: class extends FakeChannel {
          constructor(name: string) {
            super(name)
            groups.push(name.slice(name.indexOf('#') + 1))
          }
        } as unknown as typeof BroadcastChannel,
      }),
    })
    follower.client.connect()
    await tick(100)
    expect([leader.client.mode, follower.client.mode, follower.client.state, groups]).toEqual(['leader', 'follower', 'online', ['u1']])
    // The leader's socket drops: the follower's check waits for the provider past its time limit.
    held = null
    server.peer.close(1012)
    await tick(50)
    const answer = held!
    held = undefined
    await tick(2000)
    expect(follower.client.state).toBe('online')
    // The leader's tab closes: the follower leads, its socket's token (asked now, newer than the check) names u1.
    leader.client.close()
    await tick(1000)
    expect([groups, follower.client.mode, follower.client.state]).toEqual([['u1'], 'leader', 'online'])
    const sockets = server.peers.length
    // The old check answers now, naming u2 (a sign-in since undone): older than the token the tab went by since. It
    // must not send the tab out of its group (its live socket torn down, 'user changed', a join that finds u1 again).
    answer(jwt('u2'))
    await tick(1000)
    expect([groups, follower.client.mode, follower.client.state, server.peers.length]).toEqual([['u1'], 'leader', 'online', sockets])
    expect(follower.log.statuses.map((e) => e.reason)).not.toContain('user changed')
  })
})
