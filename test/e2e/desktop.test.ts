/**
 * belfry/desktop in Chromium, on the demo page. A stub Notification records
 * what the page shows (and whether a permission request came with a user
 * gesture), and each page's visibility is stubbed, so that a test can hide
 * pages that headless Chromium always shows as visible. Two tests use the
 * real Notification API.
 */
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { NotificationClient } from '../../src/index.js'
import { publish, setVisible, useDemo } from './harness.js'

const e2e = useDemo('desktop-', { width: 1000, height: 700 })

interface Shown {
  title: string
  tag: string
}
interface Stub {
  shown: Shown[]
  /** navigator.userActivation.isActive at each requestPermission(). */
  requests: boolean[]
  closed: number
  focused: number
  last?: { onclick: (() => void) | null }
}

/** The stub Notification (permission `permission`), and a visibility each test sets per page. */
async function stubs(permission: NotificationPermission = 'granted'): Promise<void> {
  await e2e.context.addInitScript((permission) => {
    const w = window as unknown as { stub: Stub; visible: boolean; Notification: unknown; focus: () => void }
    const stub: Stub = { shown: [], requests: [], closed: 0, focused: 0 }
    w.stub = stub
    w.visible = true
    Object.defineProperty(Document.prototype, 'visibilityState', { get: () => (w.visible ? 'visible' : 'hidden'), configurable: true })
    Object.defineProperty(Document.prototype, 'hidden', { get: () => !w.visible, configurable: true })
    class StubNotification {
      static permission = permission
      static requestPermission() {
        stub.requests.push(navigator.userActivation.isActive)
        StubNotification.permission = 'granted'
        return Promise.resolve('granted')
      }
      onclick: (() => void) | null = null
      constructor(title: string, options: { tag: string }) {
        stub.shown.push({ title, tag: options.tag })
        stub.last = this
      }
      close() {
        stub.closed++
      }
    }
    w.Notification = StubNotification
    w.focus = () => {
      stub.focused++
    }
  }, permission)
}

async function tab(share: boolean, user = 'ann'): Promise<Page> {
  const page = await e2e.open(`/?user=${user}${share ? '&share=1' : ''}`)
  await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
  return page
}

const stubOf = (page: Page) => page.evaluate(() => (window as unknown as { stub: Stub }).stub)
const shownOn = async (list: Page[]) => (await Promise.all(list.map(stubOf))).map((s) => s.shown)
const badge = (page: Page) => page.locator('[data-testid="badge"]').textContent()
const modeOf = (page: Page) => page.locator('[data-testid="mode"]').getAttribute('data-mode')
const titlesOn = async (page: Page) => (await stubOf(page)).shown.map((s) => s.title)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** belfry/desktop as an app bundles it, exposed as `belfryDesktop`: for an instance of a test's own beside the demo's. */
async function bundleDesktop(): Promise<string> {
  const root = fileURLToPath(new URL('../../', import.meta.url))
  const out = await build({
    entryPoints: [`${root}src/desktop/index.ts`],
    bundle: true,
    format: 'iife',
    globalName: 'belfryDesktop',
    write: false,
    alias: { belfry: `${root}src/index.ts` },
    logLevel: 'silent',
  })
  return out.outputFiles[0]!.text
}

/** Publishes one and waits until every page has counted it (so that any desktop notification would be up). */
async function publishAndWait(list: Page[], title: string, count: number): Promise<void> {
  expect(await publish(e2e.demo.url, { userId: 'ann', title, body: 'b' })).toBe(201)
  for (const page of list)
    await page.waitForFunction((n) => document.querySelector('[data-testid="badge"]')?.textContent === String(n), count)
  await sleep(100)
}

/** Publishes n`from` to n`to` and waits until every page has counted them all. */
async function burst(list: Page[], from: number, to: number): Promise<void> {
  for (let i = from; i <= to; i++) expect(await publish(e2e.demo.url, { userId: 'ann', title: `n${i}`, body: '' })).toBe(201)
  for (const page of list) await page.waitForFunction((n) => document.querySelector('[data-testid="badge"]')?.textContent === String(n), to)
}

/** The page of `list` that leads, once one does. */
async function leaderOf(list: Page[]): Promise<Page> {
  await expect.poll(async () => (await Promise.all(list.map(modeOf))).filter((m) => m === 'leader').length).toBe(1)
  return list[(await Promise.all(list.map(modeOf))).indexOf('leader')]!
}

describe('belfry/desktop in Chromium', () => {
  it('shows one desktop notification per publish from one page of three sharing a connection, and none while a page is visible', async () => {
    await stubs()
    const three = [await tab(true), await tab(true), await tab(true)]
    for (const page of three) await setVisible(page, false)
    await publishAndWait(three, 'first', 1)
    const shown = await shownOn(three)
    expect(shown.flat()).toEqual([{ title: 'first', tag: expect.any(String) }])
    const leader = three[(await Promise.all(three.map(modeOf))).indexOf('leader')]!
    expect((await stubOf(leader)).shown).toHaveLength(1)
    // A follower comes to the front: nothing goes to the desktop (2 s later, past the rate limit).
    const follower = three.find((p) => p !== leader)!
    await setVisible(follower, true)
    await sleep(2000)
    await publishAndWait(three, 'second', 2)
    expect((await shownOn(three)).flat()).toHaveLength(1)
  })

  it("shows ann's while none of ann's pages is visible, though bob's page in the same browser is", async () => {
    await stubs()
    const ann = await tab(false)
    await setVisible(ann, false)
    // Visible: the user is on bob's page and sends ann one from it.
    const bob = await tab(false, 'bob')
    await bob.locator('[data-testid="send-target"]').selectOption('user')
    await bob.locator('[data-testid="send-to"]').fill('ann')
    await bob.locator('[data-testid="send-title"]').fill('from bob')
    await bob.locator('[data-testid="send"]').click()
    await ann.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '1')
    await sleep(300)
    // Bob's page shows nothing of ann's: only the desktop tells it.
    expect(await bob.locator('[data-testid="toasts"]').textContent()).not.toContain('from bob')
    expect((await stubOf(ann)).shown.map((s) => s.title)).toEqual(['from bob'])
  })

  it('with a socket per page, each page shows it under the same tag (the browser keeps one)', async () => {
    await stubs()
    const three = [await tab(false), await tab(false), await tab(false)]
    for (const page of three) await setVisible(page, false)
    await publishAndWait(three, 'hello', 1)
    const shown = (await shownOn(three)).flat()
    expect(shown).toHaveLength(3)
    expect(new Set(shown.map((s) => s.tag)).size).toBe(1)
  })

  it('folds a burst of 20 into one notification and one summary', async () => {
    await stubs()
    const page = await tab(true)
    await setVisible(page, false)
    for (let i = 1; i <= 20; i++) expect(await publish(e2e.demo.url, { userId: 'ann', title: `n${i}`, body: '' })).toBe(201)
    await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '20')
    await sleep(2500)
    const { shown } = await stubOf(page)
    expect(shown.length).toBeLessThanOrEqual(2)
    expect(shown[0]!.title).toBe('n1')
    expect(shown.slice(1).map((s) => s.title)).toEqual(shown.length === 2 ? [`${20 - 1} new notifications`] : [])
  })

  it("hands a summary still waiting to the page that leads next when the leader's page is closed before it is due", async () => {
    await stubs()
    const three = [await tab(true), await tab(true), await tab(true)]
    for (const page of three) await setVisible(page, false)
    for (let i = 1; i <= 3; i++) expect(await publish(e2e.demo.url, { userId: 'ann', title: `n${i}`, body: '' })).toBe(201)
    for (const page of three) await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '3')
    const leader = three[(await Promise.all(three.map(modeOf))).indexOf('leader')]!
    expect((await stubOf(leader)).shown.map((s) => s.title)).toEqual(['n1'])
    // Closed within the interval: the other two wait for "2 new notifications". (Chromium never shows a
    // Notification constructed in pagehide: the leader cannot show it itself.)
    await leader.close()
    const rest = three.filter((p) => p !== leader)
    await sleep(2500)
    expect((await shownOn(rest)).flat().map((s) => s.title)).toEqual(['2 new notifications'])
  })

  it("counts once what is handed on twice: the leader's page closed, then the next leader's, both before the summary is due", async () => {
    await stubs()
    // B is closed as soon as it leads: Chromium logs the socket it was opening.
    e2e.allow(/WebSocket is closed before the connection is established/)
    const three = [await tab(true), await tab(true), await tab(true)]
    for (const page of three) await setVisible(page, false)
    await burst(three, 1, 3)
    const a = await leaderOf(three)
    expect(await titlesOn(a)).toEqual(['n1']) // n2 and n3 wait for "2 new notifications"
    // The user closes two of the three pages in quick succession: A hands n2 and n3 to B and C, then B to C again.
    await a.close()
    const rest = three.filter((p) => p !== a)
    const b = await leaderOf(rest)
    await b.close()
    const c = rest.find((p) => p !== b)!
    await expect.poll(() => modeOf(c)).toBe('leader')
    await expect.poll(() => titlesOn(c), { timeout: 5000 }).not.toEqual([])
    await sleep(300)
    expect(await titlesOn(c)).toEqual(['2 new notifications'])
  })

  it("counts once what a page with a socket of its own holds already when the shared leader's page hands it on", async () => {
    await stubs()
    // The same user's pages: two sharing a connection, one with a socket of its own (say opened before a
    // deploy turned belfry/shared on).
    const shared = [await tab(true), await tab(true)]
    const solo = await tab(false)
    for (const page of [...shared, solo]) await setVisible(page, false)
    await burst([...shared, solo], 1, 3)
    const leader = await leaderOf(shared)
    expect(await titlesOn(leader)).toEqual(['n1'])
    expect(await titlesOn(solo)).toEqual(['n1']) // and waits for its own "2 new notifications" (the same tag)
    await leader.close()
    await expect.poll(() => titlesOn(solo), { timeout: 5000 }).toHaveLength(2)
    await sleep(300)
    expect(await titlesOn(solo)).toEqual(['n1', '2 new notifications'])
  })

  it("counts in the next leader's summary what the unseen summary of the closed leader's page told", async () => {
    await stubs()
    const two = [await tab(true), await tab(true)]
    for (const page of two) await setVisible(page, false)
    await burst(two, 1, 4)
    const a = await leaderOf(two)
    const b = two.find((p) => p !== a)!
    // n1 alone, then the summary of n2 to n4 on the desktop, unseen (not clicked, no page visible).
    await expect.poll(() => titlesOn(a), { timeout: 5000 }).toEqual(['n1', '3 new notifications'])
    // The leader's page is closed with its summary up, none pending; B leads.
    await a.close()
    await expect.poll(() => modeOf(b)).toBe('leader')
    // Two more within an interval: B's summary replaces "3 new notifications" (one tag). (n5 is shown alone, or
    // counts in that summary too if it came as B's catch-up.)
    await burst([b], 5, 6)
    await expect.poll(async () => (await titlesOn(b)).some((t) => /new notification/.test(t)), { timeout: 5000 }).toBe(true)
    const summary = (await titlesOn(b)).findLast((t) => /new notification/.test(t))!
    // It tells those of the summary it replaces too (n2 to n4, none read), and n6.
    expect(Number.parseInt(summary, 10)).toBeGreaterThanOrEqual(4)
  })

  it('shows 50 notifications replayed on a reconnect as one summary at most, none one by one', async () => {
    await stubs()
    // Chromium logs the refused reconnects while the network is off.
    e2e.allow(/net::ERR_INTERNET_DISCONNECTED|WebSocket/)
    const page = await tab(false)
    await setVisible(page, false)
    await e2e.context.setOffline(true)
    await page.locator('[data-testid="status"][data-state="offline"]').waitFor()
    for (let i = 1; i <= 50; i++) expect(await publish(e2e.demo.url, { userId: 'ann', title: `queued ${i}`, body: '' })).toBe(201)
    await e2e.context.setOffline(false)
    await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '50', undefined, { timeout: 15_000 })
    await sleep(2500)
    const { shown } = await stubOf(page)
    expect(shown.filter((s) => s.title.startsWith('queued'))).toEqual([])
    expect(shown.map((s) => s.title)).toEqual(['50 new notifications'])
  })

  it('tells nothing, not even a summary, of catch-up notifications read on another device while the page was offline', async () => {
    await stubs()
    e2e.allow(/net::ERR_INTERNET_DISCONNECTED|WebSocket/)
    const page = await tab(false)
    await setVisible(page, false)
    await publishAndWait([page], 'first', 1) // shown; the page's cursor is past it
    await e2e.context.setOffline(true)
    await page.locator('[data-testid="status"][data-state="offline"]').waitFor()
    for (let i = 1; i <= 3; i++) expect(await publish(e2e.demo.url, { userId: 'ann', title: `queued ${i}`, body: '' })).toBe(201)
    // The user reads them all on a phone.
    const phone = new NotificationClient({
      url: `${e2e.demo.url.replace('http', 'ws')}/ws`,
      token: async () => ((await (await fetch(`${e2e.demo.url}/api/dev/token?user=ann`)).json()) as { token: string }).token,
      WebSocket,
      storage: false,
    })
    await phone.ready()
    expect((await phone.markAllRead()).unreadCount).toBe(0)
    phone.close()
    // Back online: the catch-up comes, all of it read.
    await e2e.context.setOffline(false)
    await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
    await sleep(2500) // past the interval: a summary would be up
    expect(await page.locator('[data-testid="badge"]').isHidden()).toBe(true)
    expect((await stubOf(page)).shown.map((s) => s.title)).toEqual(['first'])
  })

  it('on a click focuses the page, closes the notification and opens the inbox', async () => {
    await stubs()
    const page = await tab(true)
    await setVisible(page, false)
    await publishAndWait([page], 'click me', 1)
    await page.evaluate(() => (window as unknown as { stub: Stub }).stub.last!.onclick!())
    const stub = await stubOf(page)
    expect([stub.focused, stub.closed]).toEqual([1, 1])
    expect(await page.locator('[data-testid="bell"]').getAttribute('aria-expanded')).toBe('true')
    expect(await badge(page)).toBe('1')
  })

  it('asks for the permission only from a real click, never on load or from a script', async () => {
    await stubs('default')
    // The page's own script clicks the button 5.5 s after it loads, once any user activation has
    // lapsed (Chromium's lasts 5 s): a click without a user gesture. (A Playwright evaluate would
    // not do: Playwright's calls run with one.)
    await e2e.context.addInitScript(() => {
      addEventListener('load', () =>
        setTimeout(() => {
          const w = window as unknown as { scriptClick: boolean }
          w.scriptClick = navigator.userActivation.isActive
          ;(document.querySelector('[data-testid="desktop-enable"]') as HTMLButtonElement).click()
        }, 5500),
      )
    })
    const page = await tab(true)
    const button = page.locator('[data-testid="desktop-enable"]')
    // Nothing from Playwright meanwhile: its calls give the page activation.
    await sleep(6500)
    expect(await page.locator('[data-testid="error"]').textContent()).toMatch(/click or key handler/)
    expect(await page.evaluate(() => (window as unknown as { scriptClick: boolean }).scriptClick)).toBe(false)
    expect((await stubOf(page)).requests).toEqual([])
    expect(await button.isVisible()).toBe(true)
    await button.click()
    await button.waitFor({ state: 'hidden' })
    expect((await stubOf(page)).requests).toEqual([true])
    expect(await page.locator('[data-testid="desktop-state"]').getAttribute('data-permission')).toBe('granted')
    // The script's refusal went to the page's error line, not the console.
    e2e.pages.at(-1)!.problems.length = 0
  })

  it('uses the real Notification API once the permission is granted to the origin', async () => {
    await e2e.context.grantPermissions(['notifications'], { origin: e2e.demo.url })
    const page = await tab(true)
    const result = await page.evaluate(() => {
      try {
        const n = new Notification('belfry', { body: 'a real one', tag: 'smoke' })
        n.close()
        return { permission: Notification.permission, error: '' }
      } catch (error) {
        return { permission: Notification.permission, error: String(error) }
      }
    })
    expect(result).toEqual({ permission: 'granted', error: '' })
    expect(await page.locator('[data-testid="desktop-state"]').getAttribute('data-permission')).toBe('granted')
  })

  it('skips, telling it on error, one whose options the real Notification refuses (actions), and stays granted for the next', async () => {
    await e2e.context.grantPermissions(['notifications'], { origin: e2e.demo.url })
    // A hidden page; the real Notification, recording what is constructed.
    await e2e.context.addInitScript(() => {
      const w = window as unknown as { shown: string[] }
      w.shown = []
      Object.defineProperty(Document.prototype, 'visibilityState', { get: () => 'hidden', configurable: true })
      Object.defineProperty(Document.prototype, 'hidden', { get: () => true, configurable: true })
      const Real = window.Notification
      class Recording extends Real {
        constructor(title: string, options?: NotificationOptions) {
          super(title, options)
          w.shown.push(title)
        }
      }
      window.Notification = Recording as typeof Notification
    })
    const page = await tab(false)
    await page.addScriptTag({ content: await bundleDesktop() })
    interface Mine {
      permission: string
      errors: string[]
      told: string[]
    }
    await page.evaluate(() => {
      const w = window as unknown as { belfry: unknown; belfryDesktop: typeof import('../../src/desktop/index.js'); mine: Mine }
      const errors: string[] = []
      const told: string[] = []
      const desktop = w.belfryDesktop.desktopNotifications(w.belfry as never, {
        // A render shared with the app's service worker, which adds buttons to an urgent one: Chromium's
        // constructor takes `actions` from a service worker only.
        render: (n) => ({
          title: `mine: ${n.title}`,
          options:
            n.priority === 'high'
              ? ({ body: n.body, actions: [{ action: 'open', title: 'Open' }] } as NotificationOptions)
              : { body: n.body },
        }),
      })
      desktop.on('error', (e) => errors.push((e.cause as Error).message))
      desktop.on('permission', (p) => told.push(p))
      w.mine = {
        get permission() {
          return desktop.permission
        },
        errors,
        told,
      }
    })
    const state = () =>
      page.evaluate(() => {
        const w = window as unknown as { shown: string[]; mine: Mine }
        return { shown: [...w.shown].sort(), permission: w.mine.permission, errors: w.mine.errors, told: w.mine.told }
      })
    expect((await state()).permission).toBe('granted')
    expect(await publish(e2e.demo.url, { userId: 'ann', title: 'urgent', body: '', priority: 'high' })).toBe(201)
    await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '1')
    await sleep(2100) // past the interval: the next is shown alone
    await publishAndWait([page], 'plain', 2)
    await sleep(400)
    // The demo's own instance (default render) showed both; this one the plain one, still granted.
    expect(await state()).toEqual({
      permission: 'granted',
      told: [],
      shown: ['mine: plain', 'plain', 'urgent'],
      errors: [expect.stringMatching(/Actions are only supported for persistent notifications/)],
    })
  })
})
