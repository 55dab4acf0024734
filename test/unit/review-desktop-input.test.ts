/**
 * Review: belfry/desktop's handle and a client already closed. The standard: a bad argument is a
 * TypeError that says what it got and what is expected, never the engine's error or an unhandled
 * rejection later; and the instance "stops when `client` is closed" (README, src/desktop/index.ts).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { desktopNotifications } from '../../src/desktop/index.js'
import type { ConnectionMode, Notification, NotificationClient, StatusEvent } from '../../src/index.js'
import { FakeChannel } from '../helpers/locks.js'
import { cleanup } from '../helpers/mock-server.js'

/** A client that emits what a test tells it to (as test/unit/desktop.test.ts's). */
function fakeClient() {
  const handlers = { notification: new Set<(n: Notification) => void>(), status: new Set<(e: StatusEvent) => void>() }
  const client = {
    mode: 'solo' as ConnectionMode,
    on(type: string, handler: (e: never) => void) {
      const set = (handlers as Record<string, Set<(e: never) => void>>)[type] ?? new Set()
      set.add(handler)
      return () => set.delete(handler)
    },
  }
  return {
    client: client as unknown as NotificationClient,
    notify: (n: Notification) => {
      for (const h of handlers.notification) h(n)
    },
  }
}

function fakeNotification() {
  const shown: string[] = []
  class Fake {
    static permission: NotificationPermission = 'granted'
    static async requestPermission() {
      return Fake.permission
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
  vi.stubGlobal('BroadcastChannel', FakeChannel)
  const win = new EventTarget()
  vi.stubGlobal('addEventListener', win.addEventListener.bind(win))
  vi.stubGlobal('removeEventListener', win.removeEventListener.bind(win))
})
afterEach(cleanup)

describe('desktopNotifications: on()', () => {
  // `listeners[type].add(handler)` on a name it does not know: "Cannot read properties of undefined (reading 'add')".
  it('refuses an event name it does not know with a TypeError that names it, not the engine error', () => {
    const desktop = desktopNotifications(fakeClient().client, { Notification: fakeNotification().Ctor, anyTabVisible: () => false })
    let error: unknown
    try {
      desktop.on('clicked' as never, () => {})
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(TypeError)
    expect((error as Error).message).not.toMatch(/Cannot read properties/)
    expect((error as Error).message).toMatch(/clicked/)
  })

  // Taken as it is: an `error` handler that is no function (`desktop.on('error', this.onError)` before the method
  // exists) throws inside fail(), which runs in a `.catch()`: an unhandled rejection at the next callback failure
  // (it ends a Node process). A `click` or `permission` one throws in the notification's click event or in request().
  it('refuses a handler that is no function with a TypeError, at the call', () => {
    const desktop = desktopNotifications(fakeClient().client, { Notification: fakeNotification().Ctor, anyTabVisible: () => false })
    for (const type of ['error', 'click', 'permission'] as const) {
      expect(() => desktop.on(type, undefined as never), type).toThrow(TypeError)
      expect(() => desktop.on(type, 'handler' as never), type).toThrow(TypeError)
    }
  })
})
