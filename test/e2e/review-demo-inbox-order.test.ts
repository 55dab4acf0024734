/**
 * Review: the vanilla demo's inbox, open while notifications arrive, must keep
 * its list newest (highest seq) first, as inbox.ts says it does.
 */
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { publish, useDemo } from './harness.js'

const e2e = useDemo('review-inbox-order-', { width: 1100, height: 760 })

const seqs = (page: Page) =>
  page.locator('[data-testid="inbox-item"]').evaluateAll((li) => li.map((l) => Number(l.getAttribute('data-seq'))))

describe('demo page inbox', () => {
  it('keeps the open inbox newest first as live notifications arrive one after another', async () => {
    const page = await e2e.open('/?user=ivy')
    await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
    // One notification in history, then the inbox is opened and shows it.
    expect(await publish(e2e.demo.url, { userId: 'ivy', title: 'h1', body: '' })).toBe(201)
    await page.locator('[data-testid="toast-title"]', { hasText: 'h1' }).waitFor()
    await page.locator('[data-testid="bell"]').click()
    await page.locator('[data-testid="inbox-item"]').first().waitFor()
    expect(await seqs(page)).toEqual([1])

    // Two live ones while the panel is open, each waited for before the next is sent.
    for (const [i, title] of ['live 2', 'live 3'].entries()) {
      expect(await publish(e2e.demo.url, { userId: 'ivy', title, body: '' })).toBe(201)
      await page.waitForFunction((n) => document.querySelectorAll('[data-testid="inbox-item"]').length === n, i + 2)
    }
    // inbox.ts: "the list keeps them newest (highest seq) first". It shows [2, 3, 1].
    expect(await seqs(page)).toEqual([3, 2, 1])
  })
})
