/**
 * Review of belfry/desktop's summary count with a socket per tab: each tab
 * shows its own summary under the one tag (the browser keeps the last), and
 * each counts what its earlier summaries told. A click on the summary starts
 * the count over (README) only in the tab whose Notification was clicked: the
 * user's other tabs go on counting what the user just clicked through.
 */
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { publish, useDemo } from './harness.js'

const e2e = useDemo('review-desktop-click-solo-', { width: 1000, height: 700 })

/** A stub Notification recording what is shown (and each summary, to click it), and a visibility the test sets. */
async function stubs(): Promise<void> {
  await e2e.context.addInitScript(() => {
    const w = window as unknown as { shown: string[]; summaries: { onclick: (() => void) | null }[]; visible: boolean; Notification: unknown }
    w.shown = []
    w.summaries = []
    w.visible = true
    Object.defineProperty(Document.prototype, 'visibilityState', { get: () => (w.visible ? 'visible' : 'hidden'), configurable: true })
    Object.defineProperty(Document.prototype, 'hidden', { get: () => !w.visible, configurable: true })
    w.Notification = class {
      static permission = 'granted'
      static requestPermission = () => Promise.resolve('granted')
      onclick: (() => void) | null = null
      constructor(title: string, options: { tag: string }) {
        w.shown.push(title)
        if (options.tag === 'belfry:summary') w.summaries.push(this)
      }
      close() {}
    }
  })
}

async function tab(): Promise<Page> {
  const page = await e2e.open('/?user=ann')
  await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
  await setVisible(page, false)
  return page
}
const setVisible = (page: Page, visible: boolean) =>
  page.evaluate((visible) => {
    ;(window as unknown as { visible: boolean }).visible = visible
    document.dispatchEvent(new Event('visibilitychange'))
  }, visible)
const shownOn = (page: Page) => page.evaluate(() => (window as unknown as { shown: string[] }).shown)
const summariesOn = async (page: Page) => (await shownOn(page)).filter((t) => /new notification/.test(t))
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function publishAll(pages: Page[], from: number, to: number): Promise<void> {
  for (let i = from; i <= to; i++) expect(await publish(e2e.demo.url, { userId: 'ann', title: `n${i}`, body: '' })).toBe(201)
  for (const page of pages)
    await page.waitForFunction((n) => document.querySelector('[data-testid="badge"]')?.textContent === String(n), to)
}

describe('belfry/desktop with a socket per tab (review)', () => {
  it("starts the count over in every tab when the user clicks the summary: the other tab's next summary does not tell the clicked ones again", async () => {
    await stubs()
    const [x, y] = [await tab(), await tab()]
    await publishAll([x, y], 1, 3)
    // Each tab: n1 alone, then its "2 new notifications" (one tag: the desktop shows one of them).
    for (const page of [x, y]) await expect.poll(() => summariesOn(page), { timeout: 5000 }).toEqual(['2 new notifications'])
    // The user clicks the summary on the desktop (X's): X comes forward, the user looks, and goes back to other work.
    await x.evaluate(() => (window as unknown as { summaries: { onclick: () => void }[] }).summaries.at(-1)!.onclick())
    await setVisible(x, true)
    await sleep(1000)
    await setVisible(x, false)
    await sleep(1500) // past the interval since the summaries
    // Two more, within an interval: one alone, one in a summary (or both in it).
    await publishAll([x, y], 4, 5)
    for (const page of [x, y]) await expect.poll(async () => (await summariesOn(page)).length, { timeout: 5000 }).toBe(2)
    await sleep(300)
    // Whichever tab's summary the desktop keeps, it tells what came after the click only: n4 and n5 at most.
    expect((await summariesOn(x)).map((t) => Number.parseInt(t, 10))[1]).toBeLessThanOrEqual(2)
    expect((await summariesOn(y)).map((t) => Number.parseInt(t, 10))[1]).toBeLessThanOrEqual(2)
  })
})
