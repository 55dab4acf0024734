import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { desktopNotifications } from '../../src/desktop/index.js'
import { cleanup, connected, createClient, note, startMockServer, tick } from '../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

class Granted {
  static permission: NotificationPermission = 'granted'
  static shown = 0
  onclick: (() => void) | null = null
  constructor() {
    Granted.shown++
  }
  close() {}
}

describe('review: belfry/desktop and an app callback that throws', () => {
  it('a filter that throws is reported on the client’s error event, as a throwing subscriber is, not left as an unhandled rejection', async () => {
    const escaped: unknown[] = []
    const onRejection = (reason: unknown) => escaped.push(reason)
    process.on('unhandledRejection', onRejection)
    try {
      const server = startMockServer()
      const t = await connected(createClient(server))
      desktopNotifications(t.client, {
        Notification: Granted as unknown as typeof Notification,
        anyTabVisible: () => false,
        filter: () => {
          throw new Error('bad filter')
        },
      })
      server.peer.send(note(1))
      await tick()
      vi.useRealTimers()
      await new Promise((r) => setTimeout(r, 20)) // a real turn: Node tells unhandled rejections then
      expect(t.log.notifications.map((n) => n.seq)).toEqual([1])
      expect(escaped).toEqual([])
      expect(t.log.errors.map((e) => (e.cause as Error | undefined)?.message)).toEqual(['bad filter'])
    } finally {
      process.off('unhandledRejection', onRejection)
    }
  })
})
