/**
 * Review: belfry/desktop's "some tab of the app is visible" Web Lock
 * (`belfry:visible`) is one per origin, not per user: a visible tab signed in
 * as another user suppresses the desktop notifications of a user none of whose
 * tabs is visible. README's demo walk-through ("put every tab of the page in the
 * background and send yourself one from another user's page (`?user=bob`)")
 * therefore shows nothing.
 */
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { useDemo } from './harness.js'

const e2e = useDemo('review-desktop-other-user-', { width: 1000, height: 700 })
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A Notification stub that records what a page shows; each page's visibility set by the test. */
async function stubs(): Promise<void> {
  await e2e.context.addInitScript(() => {
    const w = window as unknown as { shown: string[]; visible: boolean; Notification: unknown }
    w.shown = []
    w.visible = true
    Object.defineProperty(Document.prototype, 'visibilityState', { get: () => (w.visible ? 'visible' : 'hidden'), configurable: true })
    Object.defineProperty(Document.prototype, 'hidden', { get: () => !w.visible, configurable: true })
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
}
const setVisible = (page: Page, visible: boolean) =>
  page.evaluate((visible) => {
    ;(window as unknown as { visible: boolean }).visible = visible
    document.dispatchEvent(new Event('visibilitychange'))
  }, visible)
const shownOn = (page: Page) => page.evaluate(() => (window as unknown as { shown: string[] }).shown)
async function tab(user: string): Promise<Page> {
  const page = await e2e.open(`/?user=${user}`)
  await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
  return page
}

describe('belfry/desktop with two users in one browser', () => {
  it("shows ann's notification while none of ann's tabs is visible, though bob's tab is", async () => {
    await stubs()
    const ann = await tab('ann')
    await setVisible(ann, false)
    const bob = await tab('bob') // visible: the user is on bob's page, and sends ann one from it
    await bob.locator('[data-testid="send-target"]').selectOption('user')
    await bob.locator('[data-testid="send-to"]').fill('ann')
    await bob.locator('[data-testid="send-title"]').fill('from bob')
    await bob.locator('[data-testid="send"]').click()
    await ann.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '1')
    await sleep(300)
    // Bob's page shows nothing of ann's: only the desktop can tell ann's.
    expect(await bob.locator('[data-testid="toasts"]').textContent()).not.toContain('from bob')
    expect(await shownOn(ann)).toEqual(['from bob'])
  })
})
