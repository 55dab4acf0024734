/**
 * Review: desktopNotifications accepts an `interval` past setTimeout's range
 * (2^31-1 ms, which the client's own options refuse). The summary's timer then
 * overflows and fires at once: instead of at most one desktop notification per
 * interval, every burst shows a summary immediately.
 */
import { describe, expect, it } from 'vitest'
import { desktopNotifications } from '../../src/desktop/index.js'
import type { Notification, NotificationClient } from '../../src/index.js'

const note = (seq: number): Notification => ({
  id: `id-${seq}`,
  seq,
  title: `n${seq}`,
  body: '',
  priority: 'medium',
  timestamp: '2026-12-01T00:00:00.000Z',
  read: false,
})

describe('desktopNotifications interval', () => {
  it('keeps at most one per interval for an interval past 2^31-1 ms, or refuses it with a TypeError', async () => {
    const handlers = new Set<(n: Notification) => void>()
    const client = {
      mode: 'solo',
      on: (_: string, h: (n: Notification) => void) => {
        handlers.add(h)
        return () => handlers.delete(h)
      },
    } as unknown as NotificationClient
    const shown: string[] = []
    class Fake {
      static permission = 'granted'
      onclick = null
      constructor(title: string) {
        shown.push(title)
      }
      close() {}
    }
    const interval = 2 ** 31 // about 25 days: one, then at most one summary in 25 days
    let desktop: ReturnType<typeof desktopNotifications>
    try {
      desktop = desktopNotifications(client, { interval, Notification: Fake as unknown as typeof Notification, anyTabVisible: () => false })
    } catch (e) {
      // Refusing it, as the client refuses its timer options past 2^31-1, is a fix too.
      expect(e).toBeInstanceOf(TypeError)
      expect((e as Error).message).toMatch(/interval.*2147483648/)
      return
    }
    try {
      for (let i = 1; i <= 3; i++) for (const h of handlers) h(note(i))
      await new Promise((resolve) => setTimeout(resolve, 100))
      expect(shown).toEqual(['n1'])
    } finally {
      desktop.stop()
    }
  })
})
