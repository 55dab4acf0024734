import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NotificationServer } from '../../src/server/index.js'
import { DEMO_DIR, serveDemo } from '../../src/server/static.js'
import { API_KEY, launchBrowser, SECRET } from './harness.js'

// A subscription the server refuses (here `authorizeSubscribe`, as BELFRY_TOPICS_CLAIM does; or the user's 200th
// topic, too_many_subscriptions): the client drops the topic and reports it on `error`; the Topics card takes its chip
// off at once, on both pages, and, starting from the server's list of the user's subscriptions, does not show it after
// a reload. Its own server: the harness's authorizes every topic.
describe('demo Topics card, a refused subscription', () => {
  let browser: Browser
  let server: NotificationServer
  let url: string
  const dir = mkdtempSync(join(tmpdir(), 'belfry-e2e-'))
  beforeAll(async () => {
    browser = await launchBrowser()
    server = new NotificationServer({
      secret: SECRET,
      apiKey: API_KEY,
      database: join(dir, 'belfry.db'),
      dev: true,
      logger: pino({ level: 'silent' }),
      fallback: serveDemo(DEMO_DIR),
      authorizeSubscribe: (_user, topic) => topic !== 'payroll',
    })
    const { port } = await server.listen(0, '127.0.0.1')
    url = `http://127.0.0.1:${port}`
  })
  afterAll(async () => {
    await browser?.close()
    await server?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('does not show, after a reload, a topic the server refused as subscribed', async () => {
    const context = await browser.newContext()
    try {
      const page = await context.newPage()
      await page.goto(`${url}/?user=ann`)
      await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
      await page.locator('[data-testid="topic-input"]').fill('payroll')
      await page.locator('[data-testid="subscribe"]').click()
      const error = page.locator('[data-testid="error"]')
      await expect.poll(() => error.textContent(), { timeout: 5_000 }).toContain('refused')
      await page.reload()
      await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
      expect(await page.locator('[data-testid="topic"]').count()).toBe(0)
      expect(await page.locator('[data-testid="topics-empty"]').isVisible()).toBe(true)
    } finally {
      await context.close()
    }
  })

  for (const [name, path] of [
    ['plain page', '/'],
    ['React page', '/react.html'],
  ] as const) {
    it(`${name}: takes the refused topic's chip off as the refusal is reported, keeping the one allowed`, async () => {
      const context = await browser.newContext()
      try {
        const page = await context.newPage()
        const problems: string[] = []
        page.on('pageerror', (error) => problems.push(error.message))
        // A user of its own for each page: the server, and its subscriptions, are the file's.
        await page.goto(`${url}${path}?user=ann${path.length}`)
        await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
        for (const topic of ['deploys', 'payroll']) {
          await page.locator('[data-testid="topic-input"]').fill(topic)
          await page.locator('[data-testid="subscribe"]').click()
        }
        const error = page.locator('[data-testid="error"]')
        await expect.poll(() => error.textContent(), { timeout: 5_000 }).toContain('"payroll" refused: forbidden')
        const chips = () => page.locator('[data-testid="topic"]').evaluateAll((li) => li.map((l) => l.getAttribute('data-topic')))
        await expect.poll(chips, { timeout: 5_000 }).toEqual(['deploys'])
        expect(problems).toEqual([])
      } finally {
        await context.close()
      }
    })
  }
})
