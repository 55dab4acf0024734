/**
 * Review: belfry/desktop counts notifications that are already read towards its
 * "N new notifications" summary. A tab that was offline while the user read
 * everything on another device reconnects, gets the catch-up with `read: true`
 * (its unread badge says 0), and still pops "3 new notifications".
 */
import { describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { NotificationClient } from '../../src/index.js'
import { publish, useDemo } from './harness.js'

const e2e = useDemo('review-desktop-read-', { width: 1000, height: 700 })
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('belfry/desktop and read state', () => {
  it('does not announce as new, in a summary, catch-up notifications that were read elsewhere', async () => {
    // A Notification stub that records what is shown, and a hidden page.
    await e2e.context.addInitScript(() => {
      const w = window as unknown as { shown: string[]; Notification: unknown }
      w.shown = []
      Object.defineProperty(Document.prototype, 'visibilityState', { get: () => 'hidden', configurable: true })
      Object.defineProperty(Document.prototype, 'hidden', { get: () => true, configurable: true })
      w.Notification = class {
        static permission = 'granted'
        static requestPermission = () => Promise.resolve('granted')
        onclick = null
        constructor(title: string) {
          w.shown.push(title)
        }
        close() {}
      }
    })
    e2e.allow(/net::ERR_INTERNET_DISCONNECTED|WebSocket/)
    const page = await e2e.open('/?user=ann')
    await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
    const shown = () => page.evaluate(() => (window as unknown as { shown: string[] }).shown)

    // One live notification: shown (and the tab's cursor is past 0).
    expect(await publish(e2e.demo.url, { userId: 'ann', title: 'first', body: '' })).toBe(201)
    await expect.poll(shown).toEqual(['first'])

    // The tab goes offline; three arrive, and the user reads them all on another device.
    await e2e.context.setOffline(true)
    await page.locator('[data-testid="status"][data-state="offline"]').waitFor()
    for (let i = 1; i <= 3; i++) expect(await publish(e2e.demo.url, { userId: 'ann', title: `queued ${i}`, body: '' })).toBe(201)
    const phone = new NotificationClient({
      url: `${e2e.demo.url.replace('http', 'ws')}/ws`,
      token: async () => ((await (await fetch(`${e2e.demo.url}/api/dev/token?user=ann`)).json()) as { token: string }).token,
      WebSocket,
      storage: false,
    })
    await phone.ready()
    expect((await phone.markAllRead()).unreadCount).toBe(0)
    phone.close()

    // Back online: the catch-up comes, all of it read; the badge says nothing is unread.
    await e2e.context.setOffline(false)
    await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
    await sleep(3000) // past the 2 s interval: a summary would be up
    expect(await page.locator('[data-testid="badge"]').isHidden()).toBe(true)
    expect(await page.evaluate(() => (window as unknown as { belfry: { unreadCount: number } }).belfry.unreadCount)).toBe(0)
    // Nothing new to tell: no "3 new notifications".
    expect(await shown()).toEqual(['first'])
  })
})
