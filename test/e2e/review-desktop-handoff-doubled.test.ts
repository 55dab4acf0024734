/**
 * Review of belfry/desktop's hand-off: the notifications a summary waits for,
 * handed on `pagehide` to the other tabs, are added to what each already holds
 * without regard to their ids. A tab that gets the same ones twice (A hands to
 * B and C, then B, leading, hands them to C again before they are due) shows
 * a summary that counts each twice.
 */
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { publish, useDemo } from './harness.js'

const e2e = useDemo('review-desktop-doubled-', { width: 1000, height: 700 })

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

async function tab(share: boolean): Promise<Page> {
  const page = await e2e.open(`/?user=ann${share ? '&share=1' : ''}`)
  await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
  await page.evaluate(() => {
    ;(window as unknown as { visible: boolean }).visible = false
    document.dispatchEvent(new Event('visibilitychange'))
  })
  return page
}
const modeOf = (page: Page) => page.locator('[data-testid="mode"]').getAttribute('data-mode')
const shownOn = (page: Page) => page.evaluate(() => (window as unknown as { shown: string[] }).shown)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function burst(pages: Page[], count: number): Promise<void> {
  for (let i = 1; i <= count; i++) expect(await publish(e2e.demo.url, { userId: 'ann', title: `n${i}`, body: '' })).toBe(201)
  for (const page of pages)
    await page.waitForFunction((n) => document.querySelector('[data-testid="badge"]')?.textContent === String(n), count)
}

/** The page of `pages` that leads, once one does. */
async function leaderOf(pages: Page[]): Promise<Page> {
  await expect.poll(async () => (await Promise.all(pages.map(modeOf))).filter((m) => m === 'leader').length).toBe(1)
  return pages[(await Promise.all(pages.map(modeOf))).indexOf('leader')]!
}

describe('belfry/desktop hand-off (review)', () => {
  it('counts each notification once when the summary is handed on twice (A, then B, closed within the interval): "2", not "4"', async () => {
    await stubs()
    // B is closed as soon as it leads: Chromium logs the socket it was opening.
    e2e.allow(/WebSocket is closed before the connection is established/)
    const three = [await tab(true), await tab(true), await tab(true)]
    await burst(three, 3)
    const a = await leaderOf(three)
    expect(await shownOn(a)).toEqual(['n1']) // n2 and n3 wait for "2 new notifications"
    // The user closes two of the three tabs in quick succession, both before the summary is due.
    await a.close()
    const rest = three.filter((p) => p !== a)
    const b = await leaderOf(rest)
    await b.close()
    const c = rest.find((p) => p !== b)!
    await expect.poll(() => modeOf(c)).toBe('leader')
    await expect.poll(() => shownOn(c), { timeout: 5000 }).not.toEqual([])
    await sleep(300)
    expect(await shownOn(c)).toEqual(['2 new notifications'])
  })

  it('counts each notification once in a tab with a socket of its own that gets the shared leader\'s hand-off: "2", not "4"', async () => {
    await stubs()
    // The same user's tabs: two sharing a connection, one with its own socket (e.g. opened before a
    // deploy that turned belfry/shared on).
    const shared = [await tab(true), await tab(true)]
    const solo = await tab(false)
    await burst([...shared, solo], 3)
    const leader = await leaderOf(shared)
    expect(await shownOn(leader)).toEqual(['n1'])
    expect(await shownOn(solo)).toEqual(['n1']) // and waits for its own "2 new notifications" (the same tag)
    await leader.close()
    await expect.poll(() => shownOn(solo), { timeout: 5000 }).toHaveLength(2)
    await sleep(300)
    expect(await shownOn(solo)).toEqual(['n1', '2 new notifications'])
  })
})
