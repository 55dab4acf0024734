/**
 * belfry/desktop on the React demo page (demo/react/desktop.tsx) with ?share=1. A leader whose page goes
 * away must hand what waits for its summary to the tab that leads next (src/desktop/index.ts, its pagehide
 * listener), as the plain page does (desktop.test.ts). A stub Notification records what each page shows, and each
 * page's visibility is stubbed, as in desktop.test.ts.
 */
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { publish, setVisible, useDemo } from './harness.js'

const e2e = useDemo('react-desktop-', { width: 1100, height: 760 })

interface Stub {
  shown: string[]
}

async function stubs(): Promise<void> {
  await e2e.context.addInitScript(() => {
    const w = window as unknown as { stub: Stub; visible: boolean; Notification: unknown; focus: () => void }
    const stub: Stub = { shown: [] }
    w.stub = stub
    w.visible = true
    Object.defineProperty(Document.prototype, 'visibilityState', { get: () => (w.visible ? 'visible' : 'hidden'), configurable: true })
    Object.defineProperty(Document.prototype, 'hidden', { get: () => !w.visible, configurable: true })
    w.Notification = class {
      static permission = 'granted'
      static requestPermission() {
        return Promise.resolve('granted')
      }
      onclick: (() => void) | null = null
      constructor(title: string) {
        stub.shown.push(title)
      }
      close() {}
    }
    w.focus = () => {}
  })
}

async function tab(path: string): Promise<Page> {
  const page = await e2e.open(path)
  await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
  return page
}

const titlesOn = async (page: Page) => (await page.evaluate(() => (window as unknown as { stub: Stub }).stub)).shown
const modeOf = (page: Page) => page.locator('[data-testid="mode"]').getAttribute('data-mode')
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function leaderOf(list: Page[]): Promise<Page> {
  await expect.poll(async () => (await Promise.all(list.map(modeOf))).filter((m) => m === 'leader').length, { timeout: 10_000 }).toBe(1)
  return list[(await Promise.all(list.map(modeOf))).indexOf('leader')]!
}

async function handOff(path: string): Promise<string[][]> {
  await stubs()
  const three = [await tab(path), await tab(path), await tab(path)]
  for (const page of three) await setVisible(page, false)
  for (let i = 1; i <= 3; i++) expect(await publish(e2e.demo.url, { userId: 'ann', title: `n${i}`, body: '' })).toBe(201)
  for (const page of three) await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '3')
  const leader = await leaderOf(three)
  expect(await titlesOn(leader)).toEqual(['n1'])
  // Closed within the interval: n2 and n3 wait for "2 new notifications", handed to the page that leads next.
  await leader.close()
  const rest = three.filter((p) => p !== leader)
  await leaderOf(rest)
  await sleep(3000)
  return Promise.all(rest.map(titlesOn))
}

describe('React demo page: belfry/desktop with ?share=1', () => {
  it("hands a summary still waiting to the page that leads next when the leader's page is closed before it is due (as the plain page does)", async () => {
    // CloseOnLeave's pagehide listener (demo/react/app.tsx) must run after belfry/desktop's: the client's `closed`
    // stops belfry/desktop, which removes that listener and closes its channel. (The plain page: desktop.test.ts.)
    expect((await handOff('/react.html?user=ann&share=1')).flat()).toEqual(['2 new notifications'])
  })
})
