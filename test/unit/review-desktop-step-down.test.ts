import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { desktopNotifications } from '../../src/desktop/index.js'
import { FakeChannel, FakeLocks, tabConnection } from '../helpers/locks.js'
import { cleanup, createClient, jwt, note, startMockServer, tick } from '../helpers/mock-server.js'

/**
 * belfry/desktop over belfry/shared, every tab hidden: what arrived while no tab was visible reaches the desktop
 * once, alone or in a summary, also when the leader that counted it for a summary stops leading without its tab
 * going away (its token provider failed as its socket reconnected: it hands the lock to a tab whose provider works).
 */

/** A Notification constructor that records the titles it is asked to show. */
function fakeNotification() {
  const shown: string[] = []
  class Fake {
    static permission = 'granted'
    static async requestPermission() {
      return 'granted'
    }
    onclick: (() => void) | null = null
    constructor(title: string) {
      shown.push(title)
    }
    close() {}
  }
  return { Ctor: Fake as unknown as typeof Notification, shown }
}

beforeEach(() => {
  vi.useFakeTimers()
  FakeChannel.reset()
  // The hand-off channel of belfry/desktop, and a window for its pagehide: as in a browser.
  vi.stubGlobal('BroadcastChannel', FakeChannel)
  const win = new EventTarget()
  vi.stubGlobal('addEventListener', win.addEventListener.bind(win))
  vi.stubGlobal('removeEventListener', win.removeEventListener.bind(win))
})
afterEach(cleanup)

describe('belfry/desktop with belfry/shared: a leader that steps down with a summary pending', () => {
  it('leaves the summary of what waited to be shown by a tab (the next leader), not dropped', async () => {
    let latest = 0
    const server = startMockServer({ auth: (peer) => peer.authSuccess({ seq: latest }) })
    const locks = new FakeLocks()
    let failing = false
    // Tab a leads; its token provider fails once its socket reconnects (the app's token endpoint down a moment).
    const a = createClient(server, {
      token: () => {
        if (failing) throw new Error('token endpoint down')
        return jwt('u1')
      },
      connection: tabConnection(locks, 'a'),
    })
    a.client.on('error', () => {})
    a.client.connect()
    await tick(100)
    const b = createClient(server, { token: () => jwt('u1'), connection: tabConnection(locks, 'b') })
    b.client.connect()
    await tick(200)
    expect([a.client.mode, b.client.mode]).toEqual(['leader', 'follower'])
    // Both tabs hidden (no tab of the app visible), each with its desktop notifications.
    const shownA = fakeNotification()
    const shownB = fakeNotification()
    desktopNotifications(a.client, { Notification: shownA.Ctor, anyTabVisible: () => false })
    desktopNotifications(b.client, { Notification: shownB.Ctor, anyTabVisible: () => false })

    // A burst of 3: the first is shown, the other two wait for the summary, due 2 s (the interval) later.
    for (const i of [1, 2, 3]) server.peer.send(note(i))
    latest = 3
    await tick(100)
    expect(b.log.notifications.map((n) => n.seq)).toEqual([1, 2, 3])
    expect(shownA.shown).toEqual(['title 1'])

    // Before it is due, the leader's socket drops and its token provider fails: tab a steps down, tab b leads.
    failing = true
    server.peer.close(1012)
    await tick(1000)
    expect([a.client.mode, b.client.mode, b.client.state]).toEqual(['follower', 'leader', 'online'])
    await tick(10_000)
    // Notifications 2 and 3 came while no tab was visible: a tab tells them, in the summary that was due.
    expect([...shownA.shown, ...shownB.shown]).toContain('2 new notifications')
  })
})
