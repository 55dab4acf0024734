/**
 * Review: the plain demo page's inbox opened while the page is offline. The
 * first page's history request waits for the connection and times out; once
 * back online the notifications caught up arrive live and the inbox must end
 * up agreeing with the badge (the older ones listed, or at least a way to
 * load them), not show the catch-up alone.
 */
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { publish, useDemo } from './harness.js'

const e2e = useDemo('review-inbox-offline-', { width: 1100, height: 760 })

const waitForState = (page: Page, state: string) =>
  page.locator(`[data-testid="status"][data-state="${state}"]`).waitFor({ timeout: 15_000 })
const inboxTitles = (page: Page) => page.locator('[data-testid="inbox-item"] [data-testid="inbox-title"]').allTextContents()

describe('demo page, inbox opened while offline', () => {
  it('lists every notification of the inbox once back online, as the badge counts them', async () => {
    for (const title of ['old 1', 'old 2']) expect(await publish(e2e.demo.url, { userId: 'kim', title, body: '' })).toBe(201)
    const page = await e2e.open('/?user=kim')
    await waitForState(page, 'online')
    await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '2')

    await e2e.context.setOffline(true)
    await waitForState(page, 'offline')
    await page.locator('[data-testid="bell"]').click()
    // The first page's request waits for the connection, then gives up (the client's requestTimeout, 10 s).
    await page.waitForFunction(() => document.querySelector('[data-testid="inbox-note"]')?.textContent !== 'Loading…', undefined, {
      timeout: 30_000,
    })

    expect(await publish(e2e.demo.url, { userId: 'kim', title: 'while offline', body: '' })).toBe(201)
    await e2e.context.setOffline(false)
    await waitForState(page, 'online')
    await page.locator('[data-testid="toast-title"]', { hasText: 'while offline' }).waitFor({ timeout: 15_000 })
    await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '3')

    // The inbox is still open: it lists all three (or offers "Load more" for the rest), never the catch-up alone.
    const loadMore = page.locator('[data-testid="load-more"]')
    await expect
      .poll(async () => ((await loadMore.isVisible()) ? 'Load more' : await inboxTitles(page)), { timeout: 10_000 })
      .toSatisfy((shown: string | string[]) => shown === 'Load more' || shown.length === 3)
    if (await loadMore.isVisible()) await loadMore.click()
    await expect.poll(() => inboxTitles(page), { timeout: 10_000 }).toEqual(['while offline', 'old 2', 'old 1'])
  })
})
