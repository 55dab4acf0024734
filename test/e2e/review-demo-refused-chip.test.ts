/**
 * Review: a subscription the server refuses (here `authorizeSubscribe`, as
 * BELFRY_TOPICS_CLAIM does) on the demo pages' Topics card. The client drops
 * the topic and reports it; the card must stop listing it as subscribed at
 * once, not only after a reload (demo-refused-topic.test.ts checks the reload).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NotificationServer } from '../../src/server/index.js'
import { DEMO_DIR, serveDemo } from '../../src/server/static.js'
import { API_KEY, launchBrowser, SECRET } from './harness.js'

describe('demo Topics card, a refused subscription, before any reload', () => {
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

  for (const [name, path] of [
    ['plain page', '/'],
    ['React page', '/react.html'],
  ] as const) {
    it(`${name}: takes the refused topic off the card as it reports the refusal, keeping the one allowed`, async () => {
      const context = await browser.newContext()
      try {
        const page = await context.newPage()
        const problems: string[] = []
        page.on('pageerror', (error) => problems.push(error.message))
        await page.goto(`${url}${path}?user=ann${path.length}`)
        await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
        for (const topic of ['deploys', 'payroll']) {
          await page.locator('[data-testid="topic-input"]').fill(topic)
          await page.locator('[data-testid="subscribe"]').click()
        }
        const error = page.locator('[data-testid="error"]')
        await expect.poll(() => error.textContent(), { timeout: 5_000 }).toContain('refused')
        const chips = () => page.locator('[data-testid="topic"]').evaluateAll((li) => li.map((l) => l.getAttribute('data-topic')))
        await expect.poll(chips, { timeout: 5_000 }).toEqual(['deploys'])
        expect(problems).toEqual([])
      } finally {
        await context.close()
      }
    })
  }
})
