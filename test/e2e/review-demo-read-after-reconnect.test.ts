/**
 * Review: the demo's open inbox must show the read state the badge shows after
 * a reconnect. Marked read elsewhere while this tab was offline, its items
 * stay "unread" with their Mark read buttons, while the badge says 0 and
 * "Mark all read" is disabled.
 */
import type { BrowserContext, Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { publish, useDemo } from './harness.js'

const e2e = useDemo('review-read-reconnect-', { width: 1100, height: 760 })

const waitForState = (page: Page, state: string) =>
  page.locator(`[data-testid="status"][data-state="${state}"]`).waitFor({ timeout: 15_000 })
const readFlags = (page: Page) => page.locator('[data-testid="inbox-item"]').evaluateAll((li) => li.map((l) => l.getAttribute('data-read')))

async function scenario(path: string): Promise<Page> {
  for (const n of [1, 2]) expect(await publish(e2e.demo.url, { userId: 'kim', title: `n${n}`, body: '' })).toBe(201)
  const page = await e2e.open(path)
  await waitForState(page, 'online')
  await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '2')
  await page.locator('[data-testid="bell"]').click()
  await page.locator('[data-testid="inbox-item"]').nth(1).waitFor()
  expect(await readFlags(page)).toEqual(['false', 'false'])

  // This tab loses the network; the user marks all read on another device meanwhile.
  await e2e.context.setOffline(true)
  await waitForState(page, 'offline')
  const other: BrowserContext = await e2e.context.browser()!.newContext()
  try {
    const device = await other.newPage()
    await device.goto(`${e2e.demo.url}${path}`)
    await waitForState(device, 'online')
    await device.locator('[data-testid="bell"]').click()
    await device.locator('[data-testid="inbox-item"]').nth(1).waitFor()
    await device.locator('[data-testid="mark-all"]').click()
    await device.locator('[data-testid="badge"]').waitFor({ state: 'hidden' })
  } finally {
    await other.close()
  }

  await e2e.context.setOffline(false)
  await waitForState(page, 'online')
  // The badge learns the new count at auth...
  await page.locator('[data-testid="badge"]').waitFor({ state: 'hidden' })
  return page
}

describe('demo inbox after a reconnect', () => {
  it('vanilla page: items read elsewhere while offline show as read once back online', async () => {
    const page = await scenario('/?user=kim')
    // ...but the open list keeps both as unread, with "Mark read" buttons and "Mark all read" disabled.
    await expect.poll(() => readFlags(page), { timeout: 5_000 }).toEqual(['true', 'true'])
  })

  it('React page: items read elsewhere while offline show as read once back online', async () => {
    const page = await scenario('/react.html?user=kim')
    await expect.poll(() => readFlags(page), { timeout: 5_000 }).toEqual(['true', 'true'])
  })
})
