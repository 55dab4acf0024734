/**
 * Review: belfry/desktop takes any error of the Notification constructor for
 * "this browser cannot show notifications" (Android). In Chromium the
 * constructor also throws for options a `render` returned that only persistent
 * notifications take (`actions`, as a service worker's showNotification uses), or
 * that clash (`silent` with `vibrate`), or a bad `dir`: one such notification turns
 * `permission` into 'unsupported' for good, tells nobody what went wrong, and
 * every later notification is dropped.
 */

import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { describe, expect, it } from 'vitest'
import { publish, useDemo } from './harness.js'

const e2e = useDemo('review-desktop-bad-options-', { width: 1000, height: 700 })
const root = fileURLToPath(new URL('../../', import.meta.url))

/** belfry/desktop as an app bundles it, exposed as `belfryDesktop`. */
async function bundle(): Promise<string> {
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

describe('belfry/desktop and a rendered option the browser refuses', () => {
  it('skips that one (telling it on error) and keeps showing the next, still granted', async () => {
    await e2e.context.grantPermissions(['notifications'], { origin: e2e.demo.url })
    // Hidden page; the real Notification, recording what is constructed.
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
    const page = await e2e.open('/?user=ann')
    await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
    await page.addScriptTag({ content: await bundle() })
    await page.evaluate(() => {
      const w = window as unknown as {
        belfry: unknown
        belfryDesktop: typeof import('../../src/desktop/index.js')
        mine: { permission: string; errors: string[]; told: string[] }
      }
      const errors: string[] = []
      const told: string[] = []
      const desktop = w.belfryDesktop.desktopNotifications(w.belfry as never, {
        // A render shared with the app's service worker, which adds buttons to an urgent one.
        render: (n) => ({
          title: `mine: ${n.title}`,
          options:
            n.priority === 'high'
              ? ({ body: n.body, actions: [{ action: 'open', title: 'Open' }] } as NotificationOptions)
              : { body: n.body },
        }),
      })
      desktop.on('error', (e) => errors.push(String((e.cause as Error | undefined)?.message ?? e.message)))
      desktop.on('permission', (p) => told.push(p))
      w.mine = {
        get permission() {
          return desktop.permission
        },
        errors,
        told,
      }
    })
    const mine = () =>
      page.evaluate(() => {
        const w = window as unknown as { shown: string[]; mine: { permission: string; errors: string[]; told: string[] } }
        return {
          shown: w.shown.filter((t) => t.startsWith('mine: ')),
          permission: w.mine.permission,
          errors: w.mine.errors,
          told: w.mine.told,
        }
      })
    expect((await mine()).permission).toBe('granted')

    expect(await publish(e2e.demo.url, { userId: 'ann', title: 'urgent', body: '', priority: 'high' })).toBe(201)
    await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '1')
    // The next, plain one (past the interval).
    await new Promise((resolve) => setTimeout(resolve, 2100))
    expect(await publish(e2e.demo.url, { userId: 'ann', title: 'plain', body: '' })).toBe(201)
    await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '2')
    await new Promise((resolve) => setTimeout(resolve, 500))
    // The demo's own instance (default render) showed both: this browser shows notifications.
    const all = await page.evaluate(() => (window as unknown as { shown: string[] }).shown)
    expect(all.filter((t) => !t.startsWith('mine: '))).toEqual(['urgent', 'plain'])
    // Still granted, the plain one shown, and Chromium's refusal of the urgent one told on `error`.
    expect(await mine()).toEqual({
      permission: 'granted',
      told: [],
      shown: ['mine: plain'],
      errors: [expect.stringMatching(/Actions are only supported for persistent notifications/)],
    })
  })
})
