import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Browser, Frame } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DemoServer, launchBrowser, publish, startDemoServer } from './harness.js'

// README, Security: dev mode's routes and WebSocket handshakes "refuse requests whose Origin or Sec-Fetch-Site shows
// another origin's page … since any page could sign a dev token itself". A page of another origin cannot call them;
// but it can frame the demo page itself. The demo answers every page with nothing but `X-Content-Type-Options`: no
// `X-Frame-Options`, no CSP `frame-ancestors`. Framed by any web site the developer visits while `npm start` runs,
// the demo signs in as the user the framing page picks (`?user=`), mints its token and goes online (its requests are
// the demo's own, same-origin, so the fence lets them through), and every button of it (Send to everyone, Mark all
// read, Drop connection, Unsubscribe) is one click-jacked click away. (Chromium's Local Network Access blocks a
// public site from framing a loopback page; a page of another local origin, another dev server's port, is not blocked,
// nor is any site in browsers without that check.)

let browser: Browser
let demo: DemoServer
/** The attacker's page: another origin (another port of this machine, as another dev server is). */
let attacker: Server

beforeAll(async () => {
  browser = await launchBrowser()
  demo = await startDemoServer()
  attacker = createServer((_req, res) =>
    res
      .writeHead(200, { 'content-type': 'text/html' })
      .end(
        `<!doctype html><title>win a prize</title><iframe src="${demo.url}/?user=alice" width="1000" height="700" style="opacity:0.01"></iframe>`,
      ),
  )
  await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve))
})
afterAll(async () => {
  await browser?.close()
  await demo?.dispose()
  attacker?.close()
})

describe('the demo page, framed by a page of another origin', () => {
  it('answers with a header that forbids other origins to frame it', async () => {
    const res = await fetch(`${demo.url}/?user=alice`)
    const xfo = res.headers.get('x-frame-options') ?? ''
    const csp = res.headers.get('content-security-policy') ?? ''
    expect(/^(deny|sameorigin)$/i.test(xfo) || /frame-ancestors\s+('none'|'self')/i.test(csp)).toBe(true)
  })

  it('does not run, sign in and go online inside another site’s iframe', async () => {
    const context = await browser.newContext()
    try {
      const page = await context.newPage()
      await page.goto(`http://localhost:${(attacker.address() as AddressInfo).port}/`)
      // What the demo inside the frame shows, if it runs there (a frame refused by the browser never shows it).
      const framed = (): Frame | undefined => page.frames().find((f) => f.url().startsWith(demo.url))
      let online = false
      for (let i = 0; i < 50 && !online; i++) {
        online =
          (await framed()
            ?.evaluate(() => document.querySelector('[data-testid="status"]')?.getAttribute('data-state') === 'online')
            .catch(() => false)) ?? false
        if (!online) await page.waitForTimeout(100)
      }
      if (online) {
        // Its inbox is alice's: what is sent to her shows in the frame the attacker placed.
        expect(await publish(demo.url, { userId: 'alice', title: 'for alice', body: '' })).toBe(201)
        await framed()!.locator('[data-testid="toast-title"]', { hasText: 'for alice' }).waitFor({ timeout: 5_000 })
      }
      expect(online).toBe(false)
    } finally {
      await context.close()
    }
  })
})
