/**
 * Review: README says `/react.html` "is the same page in React", and
 * demo/react/main.tsx "the same features as the vanilla page"; the vanilla
 * page's link to it keeps `?share=1`. Sharing one connection among a user's
 * tabs (README's demo section: `?share=1`, a toggle on the connection card)
 * must then work on the React page too.
 */
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { useDemo } from './harness.js'

const e2e = useDemo('review-react-share-', { width: 1100, height: 760 })

const waitForState = (page: Page, state: string) =>
  page.locator(`[data-testid="status"][data-state="${state}"]`).waitFor({ timeout: 15_000 })

describe('React demo page, sharing one connection', () => {
  it('opens one server socket for two tabs of one user reached from the vanilla page with ?share=1', async () => {
    const plain = await e2e.open('/?user=ann&share=1')
    await waitForState(plain, 'online')
    await plain.locator('[data-testid="react-page"]').click()
    await plain.waitForURL(`${e2e.demo.url}/react.html?user=ann&share=1`)
    await waitForState(plain, 'online')
    const second = await e2e.open('/react.html?user=ann&share=1')
    await waitForState(second, 'online')
    // Give the vanilla page's socket, closed on pagehide, time to go.
    await expect.poll(() => e2e.demo.server.stats().connections, { timeout: 10_000 }).toBe(1)
  })

  it('offers the toggle of the vanilla page, checked with ?share=1', async () => {
    const page = await e2e.open('/react.html?user=ann&share=1')
    await waitForState(page, 'online')
    expect(await page.locator('[data-testid="share"]').count()).toBe(1)
    expect(await page.locator('[data-testid="share"]').isChecked()).toBe(true)
  })
})
