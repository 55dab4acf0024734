/**
 * Review of belfry/desktop's summary count across a change of leader: a
 * summary counts what the summary it replaces told (README: '"3 new
 * notifications" never replaces an unseen "22 new notifications", it says
 * 25'), but a leader whose summary is up (none pending) hands nothing on
 * `pagehide`, so the next leader's summary replaces it telling only its own.
 */
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { publish, useDemo } from './harness.js'

const e2e = useDemo('review-desktop-told-', { width: 1000, height: 700 })

/** A stub Notification recording what is shown, and a visibility the test sets (headless pages are always visible). */
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
      onclick: (() => void) | null = null
      constructor(title: string) {
        w.shown.push(title)
      }
      close() {}
    }
  })
}

async function tab(): Promise<Page> {
  const page = await e2e.open('/?user=ann&share=1')
  await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
  await page.evaluate(() => {
    ;(window as unknown as { visible: boolean }).visible = false
    document.dispatchEvent(new Event('visibilitychange'))
  })
  return page
}
const modeOf = (page: Page) => page.locator('[data-testid="mode"]').getAttribute('data-mode')
const shownOn = (page: Page) => page.evaluate(() => (window as unknown as { shown: string[] }).shown)

async function publishAll(pages: Page[], from: number, to: number): Promise<void> {
  for (let i = from; i <= to; i++) expect(await publish(e2e.demo.url, { userId: 'ann', title: `n${i}`, body: '' })).toBe(201)
  for (const page of pages)
    await page.waitForFunction((n) => document.querySelector('[data-testid="badge"]')?.textContent === String(n), to)
}

describe('belfry/desktop summary count across leaders (review)', () => {
  it('a summary after the leader changed counts what the unseen summary it replaces told: not "1 new notification" over "3 new notifications"', async () => {
    await stubs()
    const two = [await tab(), await tab()]
    await publishAll(two, 1, 4)
    const a = two[(await Promise.all(two.map(modeOf))).indexOf('leader')]!
    const b = two.find((p) => p !== a)!
    // n1 alone, then the summary of n2..n4 on the desktop, unseen (not clicked, no tab visible).
    await expect.poll(() => shownOn(a), { timeout: 5000 }).toEqual(['n1', '3 new notifications'])
    // The leader's background tab is closed (its summary is up: nothing pending); B leads.
    await a.close()
    await expect.poll(() => modeOf(b)).toBe('leader')
    // Two more within an interval: B's summary replaces "3 new notifications" (one tag). (n5 is shown alone, or
    // counts in that summary too if it came as B's catch-up.)
    await publishAll([b], 5, 6)
    await expect.poll(async () => (await shownOn(b)).some((t) => /new notification/.test(t)), { timeout: 5000 }).toBe(true)
    const summary = (await shownOn(b)).findLast((t) => /new notification/.test(t))!
    // It tells those of the summary it replaces too (n2..n4, none read), and n6.
    expect(Number.parseInt(summary, 10)).toBeGreaterThanOrEqual(4)
  })
})
