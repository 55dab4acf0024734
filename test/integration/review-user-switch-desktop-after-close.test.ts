import { afterEach, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import { desktopNotifications } from '../../src/desktop/index.js'
import { NotificationClient } from '../../src/index.js'
import { FAST_BACKOFF, range } from '../helpers/client.js'
import { httpPublish, useServer } from '../helpers/server.js'

/**
 * Review (user switching, belfry/desktop): ann is signed out in a tab that is in the background
 * (an idle timeout, a sign-out from elsewhere): the app closes ann's client. What ann's burst left
 * waiting for the summary is still shown on the desktop afterwards: desktopNotifications does not
 * follow its client's end, and its summary timer outlives it.
 */
const start = useServer()
const closers: (() => void)[] = []
afterEach(() => {
  for (const c of closers.splice(0)) c()
})

it("shows no desktop summary of ann's notifications after ann's client was closed (signed out)", async () => {
  const s = await start()
  const shown: string[] = []
  class FakeNotification {
    static permission: NotificationPermission = 'granted'
    static requestPermission = async () => 'granted' as const
    onclick: (() => void) | null = null
    constructor(title: string) {
      shown.push(title)
    }
    close() {}
  }
  const client = new NotificationClient({ url: s.wsUrl, token: () => s.token('ann'), WebSocket, backoff: FAST_BACKOFF })
  closers.push(() => client.close())
  const desktop = desktopNotifications(client, {
    user: 'ann',
    interval: 500,
    Notification: FakeNotification as unknown as typeof Notification,
    anyTabVisible: () => false, // every tab of the app is in the background
  })
  closers.push(() => desktop.stop())
  const got: number[] = []
  client.on('notification', (n) => got.push(n.seq))
  await client.ready()

  // A burst of three for ann: the first is shown, the other two wait for the summary.
  for (const i of range(1, 3)) expect((await httpPublish(s.url, { userId: 'ann', title: `for ann ${i}`, body: '' })).status).toBe(201)
  await vi.waitFor(() => expect(got).toEqual([1, 2, 3]))
  expect(shown).toEqual(['for ann 1'])

  // ann is signed out: the app closes her client (and would make bob's).
  client.close()
  await new Promise((r) => setTimeout(r, 800)) // past the summary's interval
  expect(shown, "a desktop notification of ann's after she signed out").toEqual(['for ann 1'])
})
