import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { topicRecipients, useDemo } from './harness.js'

// Two tabs of one user (the demo's own "Open a second tab" link): each keeps its own Map of topics and
// writes it whole to the one localStorage key (demo/send.ts showTopics, demo/dom.ts topicMemory.save),
// so the last tab to change its card overwrites what the other tab saved.
const e2e = useDemo('review-topics-', { width: 1100, height: 760 })

const online = (page: Page) => page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
const chips = (page: Page) => page.locator('[data-testid="topic"]').evaluateAll((li) => li.map((l) => l.getAttribute('data-topic')))
async function subscribe(page: Page, topic: string): Promise<void> {
  await page.locator('[data-testid="topic-input"]').fill(topic)
  await page.locator('[data-testid="subscribe"]').click()
  await page.locator(`[data-testid="topic"][data-topic="${topic}"]`).waitFor()
}
async function tab(): Promise<Page> {
  const page = await e2e.open('/?user=ann')
  await online(page)
  return page
}

describe('demo Topics card, two tabs of one user', () => {
  it('after a reload still shows a topic subscribed in this tab while another tab subscribed to another', async () => {
    const a = await tab()
    const b = await tab()
    await subscribe(a, 'deploys')
    await subscribe(b, 'builds')
    await expect.poll(() => topicRecipients(e2e.demo.url)).toBe(1) // ann follows deploys on the server
    await a.reload()
    await online(a)
    await a.locator('[data-testid="topic"]').first().waitFor()
    // Fails: ['builds'] — b's save overwrote a's; the card says nothing of deploys, which ann still follows.
    expect((await chips(a)).sort()).toEqual(['builds', 'deploys'])
  })

  it('does not subscribe the user again, at a reload, to a topic unsubscribed in another tab', async () => {
    const a = await tab()
    await subscribe(a, 'deploys')
    const b = await tab() // shows deploys, from the memory
    await b.locator('[data-testid="topic"][data-topic="deploys"]').waitFor()
    await a.locator('[data-testid="unsubscribe"]').click() // ann leaves deploys
    await expect.poll(() => topicRecipients(e2e.demo.url)).toBe(0)
    await subscribe(b, 'builds') // b saves its whole stale list: deploys and builds
    await a.reload()
    await online(a)
    await a.locator('[data-testid="topic"][data-topic="builds"]').waitFor()
    await a.waitForTimeout(1_000) // the subscribe frame sent at online, if any, lands
    // Fails: a subscribes ann to deploys again (1 recipient) and shows its chip.
    expect(await topicRecipients(e2e.demo.url)).toBe(0)
    expect(await chips(a)).toEqual(['builds'])
  })
})
