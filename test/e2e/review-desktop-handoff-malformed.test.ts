/**
 * Review of belfry/desktop's hand-off channel (`belfry:visible#<user>`): what
 * arrives on it is taken as an array of notifications unchecked
 * (`e.data.map(wait)`). A message of another shape (another script of the
 * origin, or another version of belfry/desktop in an older tab after a
 * deploy) throws in onmessage, and an array of anything counts in a summary
 * that goes to the desktop.
 */
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { useDemo } from './harness.js'

const e2e = useDemo('review-desktop-malformed-', { width: 1000, height: 700 })

/** A stub Notification recording what is shown, and the page hidden (headless pages are always visible). */
async function stubs(): Promise<void> {
  await e2e.context.addInitScript(() => {
    const w = window as unknown as { shown: string[]; Notification: unknown }
    w.shown = []
    Object.defineProperty(Document.prototype, 'visibilityState', { get: () => 'hidden', configurable: true })
    Object.defineProperty(Document.prototype, 'hidden', { get: () => true, configurable: true })
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

const shownOn = (page: Page) => page.evaluate(() => (window as unknown as { shown: string[] }).shown)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
/** Posts `data` on ann's channel from another page of the origin (BroadcastChannel skips its own sender object only). */
const post = (from: Page, data: unknown) =>
  from.evaluate((data) => {
    const c = new BroadcastChannel('belfry:visible#ann')
    c.postMessage(data)
    c.close()
  }, data)

describe('belfry/desktop hand-off channel (review)', () => {
  it('ignores a message on its channel that is no list of notifications: no error thrown, no summary of nothing', async () => {
    await stubs()
    const page = await e2e.open('/?user=ann')
    await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
    const other = await e2e.open('/')
    // Another shape (say a later version's { told, pending }): thrown in ann's onmessage, uncaught.
    await post(other, { told: [], pending: [] })
    await sleep(300)
    const problems = e2e.pages[0]!.problems.splice(0)
    expect(problems).toEqual([])
    // An array of what is no notification: a desktop summary of two notifications that do not exist.
    await post(other, ['hello', 42])
    await sleep(2500)
    expect(await shownOn(page)).toEqual([])
  })
})
