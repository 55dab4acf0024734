/**
 * Review: belfry/shared's `locks` and `BroadcastChannel` options. Its `beat` and `stale` are checked
 * (a TypeError that says what it got); these two are taken as they are. A lock manager without
 * `request()` or a BroadcastChannel that is no constructor fails only inside the tab's async join:
 * "locks.request is not a function" or "Channel is not a constructor" as an unhandled rejection
 * (which ends a Node process), no `error` event, and the client `connecting` for ever. belfry/desktop
 * refuses its own `Notification` option that is no constructor at the call, with its TypeError.
 */
import { WebSocket as MockWebSocket } from 'mock-socket'
import { describe, expect, it } from 'vitest'
import { NotificationClient } from '../../../src/index.js'
import { sharedConnection } from '../../../src/shared/index.js'
import { FakeChannel, FakeLocks } from '../../helpers/locks.js'

describe('sharedConnection: the locks and BroadcastChannel options', () => {
  it.each([
    ['locks', { locks: {} as LockManager, BroadcastChannel: FakeChannel as unknown as typeof BroadcastChannel }],
    ['locks', { locks: 42 as never, BroadcastChannel: FakeChannel as unknown as typeof BroadcastChannel }],
    ['BroadcastChannel', { locks: new FakeLocks().forTab('a'), BroadcastChannel: {} as never }],
    ['BroadcastChannel', { locks: new FakeLocks().forTab('a'), BroadcastChannel: 'channel' as never }],
  ])('refuses a bad %s with a TypeError that names it (%#)', (name, options) => {
    let error: unknown
    try {
      // Refused by sharedConnection() or, at the latest, as the client is made with it (before connect()).
      new NotificationClient({ url: 'ws://belfry.test/ws', token: 't', WebSocket: MockWebSocket, connection: sharedConnection(options) })
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(TypeError)
    expect((error as Error).message).toMatch(name)
  })

  it('still takes none (the browser defaults) and working ones', () => {
    expect(() => sharedConnection({})).not.toThrow()
    expect(() =>
      sharedConnection({ locks: new FakeLocks().forTab('a'), BroadcastChannel: FakeChannel as unknown as typeof BroadcastChannel }),
    ).not.toThrow()
  })
})
