/**
 * The React demo page (demo/react.html, on belfry/react) in Chromium, against
 * the reference server in dev mode: the features of the vanilla page (desktop
 * notifications too) through the provider and hooks, one socket (one for the user's tabs with
 * `?share=1`), and the links between the two pages.
 * Every flow must leave the console clean. The page is built as `npm start`
 * builds it, React in its production build (so StrictMode's second mount,
 * a development behaviour, is the react project's to test).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { describe, expect, it, vi } from 'vitest'
import { DEMO_DIR } from '../../src/server/static.js'
import { API_KEY, publish, readElsewhereWhileOffline, readFlags, subscribeAndReload, topicRecipients, useDemo } from './harness.js'

const e2e = useDemo('react-', { width: 1100, height: 760 })

const waitForState = (page: Page, state: string) =>
  page.locator(`[data-testid="status"][data-state="${state}"]`).waitFor({ timeout: 15_000 })
const badge = (page: Page) => page.locator('[data-testid="badge"]')
const modeOf = (page: Page) => page.locator('[data-testid="mode"]').getAttribute('data-mode')

/** What the stub Notification of the desktop test saw: the titles shown, and the user activation at each request. */
interface DesktopStub {
  shown: string[]
  requests: boolean[]
  last: { onclick: (() => void) | null } | undefined
}

/** The sockets the server holds, from /healthz with the API key. */
async function connections(): Promise<number> {
  const res = await fetch(`${e2e.demo.url}/healthz`, { headers: { authorization: `Bearer ${API_KEY}` } })
  return ((await res.json()) as { connections: number }).connections
}

describe('React demo page', () => {
  it('is the page `npm start` serves: React in its production build', () => {
    const html = readFileSync(join(DEMO_DIR, 'react.html'), 'utf8')
    const script = /<script[^>]*src="\/?(assets\/react-[^"]+\.js)"/.exec(html)?.[1]
    expect(script, html).toBeDefined()
    // React's production build points its errors at react.dev/errors/<code>; its development build has no such link.
    const code = readFileSync(join(DEMO_DIR, script!), 'utf8')
    expect({ production: code.includes('react.dev/errors/'), development: code.includes('jsxDEV') }).toEqual({
      production: true,
      development: false,
    })
  })

  it('shows a notification published through the HTTP API as a toast and on the badge; marking it read clears the badge', async () => {
    const page = await e2e.open('/react.html?user=alice')
    await waitForState(page, 'online')
    expect(await connections()).toBe(1)
    expect(await badge(page).isHidden()).toBe(true)

    expect(await publish(e2e.demo.url, { userId: 'alice', title: 'Build passed', body: 'main is green', priority: 'high' })).toBe(201)
    const toast = page.locator('[data-testid="toast"]').first()
    await toast.waitFor()
    expect(await toast.locator('[data-testid="toast-title"]').textContent()).toBe('Build passed')
    expect(await toast.locator('[data-testid="toast-body"]').textContent()).toBe('main is green')
    expect(await toast.getAttribute('data-priority')).toBe('high')
    await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '1')
    expect(await page.locator('[data-testid="bell"]').getAttribute('aria-label')).toBe('Notifications, 1 unread')

    await page.locator('[data-testid="bell"]').click()
    const item = page.locator('[data-testid="inbox-item"]').first()
    await item.waitFor()
    expect(await item.locator('[data-testid="inbox-title"]').textContent()).toBe('Build passed')
    await item.locator('[data-testid="mark-read"]').click()
    await page.locator('[data-testid="inbox-item"][data-read="true"]').waitFor()
    await badge(page).waitFor({ state: 'hidden' })
    expect(await connections()).toBe(1)
  })

  it('pages the inbox from history with Load more, and shows the live state through a dropped connection', async () => {
    for (let n = 1; n <= 25; n++) expect(await publish(e2e.demo.url, { userId: 'bea', title: `n${n}`, body: '' })).toBe(201)
    const page = await e2e.open('/react.html?user=bea')
    await waitForState(page, 'online')
    await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '25')
    // Reloaded, the client resumes after its cursor: nothing is replayed, the list starts empty.
    await page.reload()
    await waitForState(page, 'online')
    await page.locator('[data-testid="bell"]').click()
    // Opening loads the newest page (the server's 20), then Load more the rest.
    await page.locator('[data-testid="inbox-item"]').nth(19).waitFor()
    expect(await page.locator('[data-testid="inbox-item"]').count()).toBe(20)
    await page.locator('[data-testid="load-more"]').click()
    await page.locator('[data-testid="inbox-item"]').nth(24).waitFor()
    await page.locator('[data-testid="load-more"]').waitFor({ state: 'hidden' })
    const seqs = await page.locator('[data-testid="inbox-item"]').evaluateAll((li) => li.map((l) => Number(l.getAttribute('data-seq'))))
    expect(seqs).toEqual(Array.from({ length: 25 }, (_, i) => 25 - i))

    await page.keyboard.press('Escape')
    await page.locator('[data-testid="drop"]').click()
    await page.locator('[data-testid="status-log"]', { hasText: 'reconnecting' }).waitFor()
    await waitForState(page, 'online')
    // The page before the reload closed its socket on pagehide; the server may take a moment to see it.
    await vi.waitFor(async () => expect(await connections()).toBe(1), { timeout: 10_000 })
  })

  it('lists the whole inbox once back online when it was opened offline: the older ones with what came meanwhile', async () => {
    for (const title of ['old 1', 'old 2']) expect(await publish(e2e.demo.url, { userId: 'kit', title, body: '' })).toBe(201)
    const page = await e2e.open('/react.html?user=kit')
    await waitForState(page, 'online')
    await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '2')
    // Reloaded, the client resumes after its cursor: nothing is replayed, the list starts empty (opening asks for a page).
    await page.reload()
    await waitForState(page, 'online')
    await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '2')
    await e2e.context.setOffline(true)
    await waitForState(page, 'offline')
    await page.locator('[data-testid="bell"]').click()
    // The first page's request waits for the connection, then gives up (the client's requestTimeout, 10 s).
    await page.locator('[data-testid="inbox-note"]', { hasText: 'Could not load the inbox' }).waitFor({ timeout: 30_000 })
    expect(await publish(e2e.demo.url, { userId: 'kit', title: 'while offline', body: '' })).toBe(201)
    await e2e.context.setOffline(false)
    await waitForState(page, 'online')
    await page.locator('[data-testid="toast-title"]', { hasText: 'while offline' }).waitFor({ timeout: 15_000 })
    await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '3')
    // The panel, still open, lists all three (each once), not the one that came live alone, and no failure.
    const titles = () => page.locator('[data-testid="inbox-title"]').allTextContents()
    await expect.poll(titles, { timeout: 10_000 }).toEqual(['while offline', 'old 2', 'old 1'])
    expect(await page.locator('[data-testid="inbox-note"]').isHidden()).toBe(true)
    expect(await page.locator('[data-testid="load-more"]').isHidden()).toBe(true)
  })

  it('is linked from the vanilla page, for the same user, and links back', async () => {
    const plain = await e2e.open('/?user=cy')
    await waitForState(plain, 'online')
    await plain.locator('[data-testid="react-page"]').click()
    await plain.waitForURL(`${e2e.demo.url}/react.html?user=cy`)
    await waitForState(plain, 'online')
    expect(await plain.locator('[data-testid="user"]').textContent()).toBe('cy')
    await plain.locator('[data-testid="plain-page"]').click()
    await plain.waitForURL(`${e2e.demo.url}/?user=cy`)
    await waitForState(plain, 'online')
  })

  it('shares one socket among the tabs of a user reached with ?share=1, from the vanilla page too', async () => {
    const plain = await e2e.open('/?user=ann&share=1')
    await waitForState(plain, 'online')
    await plain.locator('[data-testid="react-page"]').click()
    await plain.waitForURL(`${e2e.demo.url}/react.html?user=ann&share=1`)
    await waitForState(plain, 'online')
    const second = await e2e.open('/react.html?user=ann&share=1')
    await waitForState(second, 'online')
    // The vanilla page's socket, closed on pagehide, may take the server a moment to see go.
    await vi.waitFor(async () => expect(await connections()).toBe(1), { timeout: 10_000 })
    expect([await modeOf(plain), await modeOf(second)].sort()).toEqual(['follower', 'leader'])
    expect(await second.locator('[data-testid="mode"]').textContent()).toMatch(/^This tab (holds the socket|shares another tab's socket)/)
  })

  it('turns sharing on and off with the toggle of the connection card, as the vanilla page does', async () => {
    const page = await e2e.open('/react.html?user=ann')
    await waitForState(page, 'online')
    const toggle = page.locator('[data-testid="share"]')
    expect([await toggle.isChecked(), await modeOf(page)]).toEqual([false, 'solo'])
    await toggle.check()
    await page.waitForURL(`${e2e.demo.url}/react.html?user=ann&share=1`)
    await waitForState(page, 'online')
    expect([await toggle.isChecked(), await modeOf(page)]).toEqual([true, 'leader'])
    await toggle.uncheck()
    await page.waitForURL(`${e2e.demo.url}/react.html?user=ann`)
    await waitForState(page, 'online')
    expect([await toggle.isChecked(), await modeOf(page)]).toEqual([false, 'solo'])
  })

  it('asks for desktop notifications only from its button, and a click on one opens the inbox', async () => {
    // A stub Notification (permission not asked yet) that records what is shown, and a visibility the test sets:
    // headless Chromium always shows its pages as visible (desktop.test.ts tests belfry/desktop itself).
    await e2e.context.addInitScript(() => {
      const w = window as unknown as { stub: DesktopStub; visible: boolean; Notification: unknown }
      const stub: DesktopStub = { shown: [], requests: [], last: undefined }
      w.stub = stub
      w.visible = true
      Object.defineProperty(Document.prototype, 'visibilityState', { get: () => (w.visible ? 'visible' : 'hidden'), configurable: true })
      Object.defineProperty(Document.prototype, 'hidden', { get: () => !w.visible, configurable: true })
      w.Notification = class {
        static permission = 'default'
        static requestPermission() {
          stub.requests.push(navigator.userActivation.isActive)
          ;(w.Notification as { permission: string }).permission = 'granted'
          return Promise.resolve('granted')
        }
        onclick: (() => void) | null = null
        constructor(title: string) {
          stub.shown.push(title)
          stub.last = this
        }
        close() {}
      }
    })
    const stubOf = () => page.evaluate(() => (window as unknown as { stub: DesktopStub }).stub)
    const page = await e2e.open('/react.html?user=ann')
    await waitForState(page, 'online')
    const button = page.locator('[data-testid="desktop-enable"]')
    const state = page.locator('[data-testid="desktop-state"]')
    await button.waitFor()
    // Nothing asked on load; the click asks, with its user activation.
    expect([await state.getAttribute('data-permission'), (await stubOf()).requests]).toEqual(['default', []])
    await button.click()
    await button.waitFor({ state: 'hidden' })
    expect([await state.getAttribute('data-permission'), (await stubOf()).requests]).toEqual(['granted', [true]])

    await page.evaluate(() => {
      ;(window as unknown as { visible: boolean }).visible = false
      document.dispatchEvent(new Event('visibilitychange'))
    })
    expect(await publish(e2e.demo.url, { userId: 'ann', title: 'on the desktop', body: '' })).toBe(201)
    await expect.poll(async () => (await stubOf()).shown, { timeout: 5_000 }).toEqual(['on the desktop'])
    expect(await page.locator('[data-testid="bell"]').getAttribute('aria-expanded')).toBe('false')
    await page.evaluate(() => (window as unknown as { stub: DesktopStub }).stub.last!.onclick!())
    await page.locator('[data-testid="inbox-item"]', { hasText: 'on the desktop' }).waitFor()
    expect(await page.locator('[data-testid="bell"]').getAttribute('aria-expanded')).toBe('true')
  })

  it('signs in from the form', async () => {
    const page = await e2e.open('/react.html')
    await page.locator('[data-testid="signin-user"]').fill('dee')
    await page.locator('[data-testid="signin"]').click()
    await page.waitForURL(`${e2e.demo.url}/react.html?user=dee`)
    await waitForState(page, 'online')
    expect(await page.locator('[data-testid="user"]').textContent()).toBe('dee')
  })
  it('still shows, after a reload, the topics the user subscribed to here (the server keeps them)', async () => {
    const page = await e2e.open('/react.html?user=lou')
    await waitForState(page, 'online')
    await subscribeAndReload(page, e2e.demo.url)
    expect(await page.locator('[data-testid="topics-empty"]').isVisible()).toBe(false)
    await page.locator('[data-testid="unsubscribe"]').click()
    await expect.poll(() => topicRecipients(e2e.demo.url)).toBe(0)
  })

  it('shows as read, once back online, what was all read on another device while it was offline', async () => {
    const page = await readElsewhereWhileOffline(e2e, '/react.html?user=kim', 'kim', 'all')
    await badge(page).waitFor({ state: 'hidden' })
    await expect.poll(() => readFlags(page), { timeout: 5_000 }).toEqual(['true', 'true'])
  })
})
