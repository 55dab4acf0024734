import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Browser, Frame } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DemoServer, launchBrowser, publish, startDemoServer } from './harness.js'

// README, Security: dev mode's routes and WebSocket handshakes refuse another origin's page, since any page could
// sign a dev token itself; and the demo pages forbid framing (`X-Frame-Options: DENY`, CSP `frame-ancestors 'none'`).
// Framed, the demo would sign in as the user the framing page picks (`?user=`), mint its token and go online (its
// requests are its own, same-origin, so the fence lets them through), and each of its buttons (Send to everyone, Mark
// all read, Drop connection, Unsubscribe) would be one click-jacked click away. (Chromium blocks a public site from
// framing a loopback page; a page of another local origin, another dev server's port, it does not.)

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
