/**
 * Review: the demo's Topics card must not say "Not subscribed to any topic."
 * while the user is subscribed. A subscription is the user's, kept by the
 * server across page loads (README, Topics), and topic sends keep arriving as
 * toasts after a reload, but the card starts empty on every load.
 */
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { publish, useDemo } from './harness.js'

const e2e = useDemo('review-topics-reload-', { width: 1100, height: 760 })

const waitForState = (page: Page, state: string) =>
  page.locator(`[data-testid="status"][data-state="${state}"]`).waitFor({ timeout: 15_000 })

describe('demo Topics card', () => {
  it('still shows a topic the user is subscribed to after a reload', async () => {
    const page = await e2e.open('/?user=lou')
    await waitForState(page, 'online')
    await page.locator('[data-testid="topic-input"]').fill('deploys')
    await page.locator('[data-testid="subscribe"]').click()
    await page.locator('[data-testid="topic"][data-topic="deploys"]').waitFor()
    // The subscription is in force: a topic send arrives.
    await expect
      .poll(async () => {
        await publish(e2e.demo.url, { topic: 'deploys', title: 'deploy 1', body: '' })
        return page.locator('[data-testid="toast-title"]', { hasText: 'deploy 1' }).count()
      })
      .toBeGreaterThan(0)

    await page.reload()
    await waitForState(page, 'online')
    // Still subscribed on the server: the next topic send arrives on the reloaded page...
    expect(await publish(e2e.demo.url, { topic: 'deploys', title: 'deploy 2', body: '' })).toBe(201)
    await page.locator('[data-testid="toast-title"]', { hasText: 'deploy 2' }).waitFor()
    // ...while the card says "Not subscribed to any topic." and offers no way to unsubscribe.
    expect(await page.locator('[data-testid="topics-empty"]').isVisible()).toBe(false)
    expect(await page.locator('[data-testid="topic"][data-topic="deploys"]').count()).toBe(1)
  })
})
