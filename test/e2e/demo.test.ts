import { copyFileSync } from 'node:fs'
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { SqliteStore } from '../../src/server/index.js'
import { publish, readElsewhereWhileOffline, readFlags, screenshot, subscribeAndReload, topicRecipients, useDemo } from './harness.js'

const e2e = useDemo('', { width: 1100, height: 760 })

/**
 * Chromium logs a refused connection itself, and a request in flight as the server stopped (reset);
 * allowed only where a test takes the server down.
 */
const REFUSED = /net::ERR_CONNECTION_(REFUSED|RESET)|WebSocket connection to '.*' failed/

async function signIn(user: string): Promise<Page> {
  const page = await e2e.open(`/?user=${encodeURIComponent(user)}`)
  await waitForState(page, 'online')
  return page
}

const waitForState = (page: Page, state: string) =>
  page.locator(`[data-testid="status"][data-state="${state}"]`).waitFor({ timeout: 15_000 })
const toastTitles = (page: Page) => page.locator('[data-testid="toast-title"]').allTextContents()
const badge = (page: Page) => page.locator('[data-testid="badge"]')

describe('demo page', () => {
  it('shows a notification published through the HTTP API as a toast, and counts it on the badge', async () => {
    const page = await signIn('alice')
    expect(await badge(page).isHidden()).toBe(true)
    expect(await publish(e2e.demo.url, { userId: 'alice', title: 'Build passed', body: 'main is green', priority: 'high' })).toBe(201)
    const toast = page.locator('[data-testid="toast"]').first()
    await toast.waitFor()
    expect(await toast.locator('[data-testid="toast-title"]').textContent()).toBe('Build passed')
    expect(await toast.locator('[data-testid="toast-body"]').textContent()).toBe('main is green')
    expect(await toast.getAttribute('data-priority')).toBe('high')
    await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '1')
    // The toast does not cover the footer's hint: the hint wraps before the toasts' column.
    const [toastBox, hintBox] = await Promise.all([toast.boundingBox(), page.locator('[data-testid="hint"]').boundingBox()])
    expect(hintBox!.x + hintBox!.width).toBeLessThanOrEqual(toastBox!.x)
    await page.locator('[data-testid="bell"]').click()
    await page.locator('[data-testid="inbox-item"]').first().waitFor()
    copyFileSync(await screenshot(page, 'demo'), 'test-results/e2e/demo-readme.png')
  })

  it('delivers what was published while the server was down exactly once after it comes back', async () => {
    const page = await signIn('dora')
    e2e.allow(REFUSED)
    await publish(e2e.demo.url, { userId: 'dora', title: 'before', body: 'live' })
    await page.locator('[data-testid="toast-title"]', { hasText: 'before' }).waitFor()
    await e2e.demo.stop()
    await waitForState(page, 'reconnecting')
    // Written straight into the store while no server runs.
    const store = new SqliteStore(e2e.demo.database)
    for (const title of ['while down 1', 'while down 2', 'while down 3']) await store.publish({ userIds: ['dora'] }, { title, body: '' })
    await store.close()
    await e2e.demo.start()
    await waitForState(page, 'online')
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="toast"]').length >= 4, undefined, { timeout: 15_000 })
    // Give a duplicate every chance to show up: one more live notification must come after them.
    await publish(e2e.demo.url, { userId: 'dora', title: 'after', body: 'live' })
    await page.locator('[data-testid="toast-title"]', { hasText: 'after' }).waitFor()
    const titles = await toastTitles(page)
    expect(titles.filter((t) => t.startsWith('while down')).sort()).toEqual(['while down 1', 'while down 2', 'while down 3'])
    expect(titles.filter((t) => t === 'before')).toHaveLength(1)
    expect(await badge(page).textContent()).toBe('5')
  })

  it('clears the badge in a second tab of the same user when the first marks all read', async () => {
    const first = await signIn('erin')
    const second = await signIn('erin')
    for (const n of [1, 2]) expect(await publish(e2e.demo.url, { userId: 'erin', title: `n${n}`, body: '' })).toBe(201)
    for (const page of [first, second])
      await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '2')
    await first.locator('[data-testid="bell"]').click()
    await first.locator('[data-testid="mark-all"]').click()
    for (const page of [first, second]) await badge(page).waitFor({ state: 'hidden' })
    expect(await badge(second).textContent()).toBe('0')
  })

  it('shows offline while the network is gone, then online, and delivers what was sent meanwhile', async () => {
    const page = await signIn('finn')
    await e2e.context.setOffline(true)
    await waitForState(page, 'offline')
    expect(await page.locator('[data-testid="status"]').textContent()).toContain('Offline')
    for (const title of ['sent offline 1', 'sent offline 2'])
      expect(await publish(e2e.demo.url, { userId: 'finn', title, body: '' })).toBe(201)
    await e2e.context.setOffline(false)
    await waitForState(page, 'online')
    await page.locator('[data-testid="toast-title"]', { hasText: 'sent offline 2' }).waitFor()
    expect((await toastTitles(page)).filter((t) => t.startsWith('sent offline'))).toHaveLength(2)
  })

  it('reconnects and catches up after "Drop connection"', async () => {
    const page = await signIn('gus')
    await page.locator('[data-testid="drop"]').click()
    // The retry may come within milliseconds: read the page's connection log rather than race the status.
    await page.locator('[data-testid="status-log"]', { hasText: 'reconnecting' }).waitFor()
    await publish(e2e.demo.url, { userId: 'gus', title: 'during the drop', body: '' })
    await waitForState(page, 'online')
    await page.locator('[data-testid="toast-title"]', { hasText: 'during the drop' }).waitFor()
    expect((await toastTitles(page)).filter((t) => t === 'during the drop')).toHaveLength(1)
  })
  it('keeps the open inbox newest first as live notifications arrive one after another', async () => {
    const page = await signIn('ivy')
    expect(await publish(e2e.demo.url, { userId: 'ivy', title: 'h1', body: '' })).toBe(201)
    await page.locator('[data-testid="toast-title"]', { hasText: 'h1' }).waitFor()
    await page.locator('[data-testid="bell"]').click()
    await page.locator('[data-testid="inbox-item"]').first().waitFor()
    expect(await inboxSeqs(page)).toEqual([1])
    // Two live ones while the panel is open, each waited for before the next is sent.
    for (const [i, title] of ['live 2', 'live 3'].entries()) {
      expect(await publish(e2e.demo.url, { userId: 'ivy', title, body: '' })).toBe(201)
      await page.waitForFunction((n) => document.querySelectorAll('[data-testid="inbox-item"]').length === n, i + 2)
    }
    expect(await inboxSeqs(page)).toEqual([3, 2, 1])
  })

  it('lists the whole inbox once back online when it was opened offline: the older ones with what came meanwhile', async () => {
    for (const title of ['old 1', 'old 2']) expect(await publish(e2e.demo.url, { userId: 'kim', title, body: '' })).toBe(201)
    const page = await signIn('kim')
    await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '2')
    await e2e.context.setOffline(true)
    await waitForState(page, 'offline')
    await page.locator('[data-testid="bell"]').click()
    // The first page's request waits for the connection, then gives up (the client's requestTimeout, 10 s).
    await page.locator('[data-testid="inbox-note"]', { hasText: 'Could not load the inbox' }).waitFor({ timeout: 30_000 })
    expect(await publish(e2e.demo.url, { userId: 'kim', title: 'while offline', body: '' })).toBe(201)
    await e2e.context.setOffline(false)
    await waitForState(page, 'online')
    await page.locator('[data-testid="toast-title"]', { hasText: 'while offline' }).waitFor({ timeout: 15_000 })
    await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '3')
    // The panel, still open, lists all three (each once), not the one that came live alone.
    await expect.poll(() => inboxTitles(page), { timeout: 10_000 }).toEqual(['while offline', 'old 2', 'old 1'])
    expect(await page.locator('[data-testid="inbox-note"]').isHidden()).toBe(true)
    expect(await page.locator('[data-testid="load-more"]').isHidden()).toBe(true)
  })

  it("shows why the token provider failed: the dev token route's reason, not only the client's wrapper", async () => {
    // Chromium logs the 400 of the token fetch itself.
    e2e.allow(/Failed to load resource: the server responded with a status of 400/)
    // A user id one character longer than the 64 the server takes.
    const page = await e2e.open(`/?user=${'x'.repeat(65)}`)
    const error = page.locator('[data-testid="error"]')
    await error.waitFor({ state: 'visible', timeout: 10_000 })
    await expect.poll(() => error.textContent(), { timeout: 5_000 }).toContain('"user" must be a user id')
  })

  it('still shows, after a reload, the topics the user subscribed to here (the server keeps them)', async () => {
    const page = await signIn('lou')
    await subscribeAndReload(page, e2e.demo.url)
    expect(await page.locator('[data-testid="topics-empty"]').isVisible()).toBe(false)
    // And the chip still unsubscribes: a topic send no longer reaches the user.
    await page.locator('[data-testid="unsubscribe"]').click()
    await expect.poll(() => topicRecipients(e2e.demo.url)).toBe(0)
  })

  it('shows as read, once back online, what was read on another device while it was offline: all of it', async () => {
    const page = await readElsewhereWhileOffline(e2e, '/?user=kim', 'kim', 'all')
    await badge(page).waitFor({ state: 'hidden' })
    await expect.poll(() => readFlags(page), { timeout: 5_000 }).toEqual(['true', 'true'])
  })

  it('shows as read, once back online, what was read on another device while it was offline: one of two', async () => {
    const page = await readElsewhereWhileOffline(e2e, '/?user=kim', 'kim', 'the newest')
    await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '1')
    await expect.poll(() => readFlags(page), { timeout: 5_000 }).toEqual(['true', 'false'])
  })

  it('shows, after a reload, the topics the user follows: those another tab subscribed to as well', async () => {
    const a = await ann()
    const b = await ann()
    await subscribe(a, 'deploys')
    await subscribe(b, 'builds')
    await expect.poll(() => topicRecipients(e2e.demo.url)).toBe(1) // ann follows deploys on the server
    await a.reload()
    await waitForState(a, 'online')
    await a.locator('[data-testid="topic"]').first().waitFor()
    expect((await chips(a)).sort()).toEqual(['builds', 'deploys'])
  })

  it('does not subscribe the user again, at a reload, to a topic another tab unsubscribed from', async () => {
    const a = await ann()
    await subscribe(a, 'deploys')
    const b = await ann() // shows deploys, from the server
    await b.locator('[data-testid="topic"][data-topic="deploys"]').waitFor()
    await a.locator('[data-testid="unsubscribe"]').click() // ann leaves deploys
    await expect.poll(() => topicRecipients(e2e.demo.url)).toBe(0)
    await subscribe(b, 'builds') // b still shows deploys
    await a.reload()
    await waitForState(a, 'online')
    await a.locator('[data-testid="topic"][data-topic="builds"]').waitFor()
    await a.waitForTimeout(1_000) // the subscribe frame sent at online, if any, lands
    expect(await topicRecipients(e2e.demo.url)).toBe(0)
    expect(await chips(a)).toEqual(['builds'])
  })
})

const inboxSeqs = (page: Page) =>
  page.locator('[data-testid="inbox-item"]').evaluateAll((li) => li.map((l) => Number(l.getAttribute('data-seq'))))

const inboxTitles = (page: Page) => page.locator('[data-testid="inbox-title"]').allTextContents()

const chips = (page: Page) => page.locator('[data-testid="topic"]').evaluateAll((li) => li.map((l) => l.getAttribute('data-topic')))
async function subscribe(page: Page, topic: string): Promise<void> {
  await page.locator('[data-testid="topic-input"]').fill(topic)
  await page.locator('[data-testid="subscribe"]').click()
  await page.locator(`[data-testid="topic"][data-topic="${topic}"]`).waitFor()
}
const ann = () => signIn('ann')
