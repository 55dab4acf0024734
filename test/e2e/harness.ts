import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest'
// @ts-expect-error plain ES module script without types
import { findChromium } from '../../scripts/chromium.mjs'
import { DEV_API_KEY, DEV_SECRET } from '../../src/server/config.js'
import { NotificationServer } from '../../src/server/index.js'
import { DEMO_DIR, serveDemo } from '../../src/server/static.js'

/** Dev mode runs on the published dev secrets only. */
export const SECRET = DEV_SECRET
export const API_KEY = DEV_API_KEY
export const ARTIFACTS = fileURLToPath(new URL('../../test-results/e2e/', import.meta.url))

/** The flags this machine's Chromium needs: no sandbox as root, no network of its own. */
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
]

/** Launches Debian's Chromium (never a downloaded browser) with a fresh profile. */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = findChromium() as string | undefined
  if (!executablePath) throw new Error('No Chromium found: run `node scripts/chromium.mjs`, or set CHROME_PATH')
  return chromium.launch({ executablePath, headless: true, args: FLAGS })
}

export interface DemoServer {
  url: string
  database: string
  server: NotificationServer
  stop(): Promise<void>
  /** Starts a new server on the same port and database. */
  start(): Promise<void>
  dispose(): Promise<void>
}

/** The reference server in dev mode serving the built demo, on a free port. */
export async function startDemoServer(): Promise<DemoServer> {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-e2e-'))
  const database = join(dir, 'belfry.db')
  const make = () =>
    new NotificationServer({
      secret: SECRET,
      apiKey: API_KEY,
      database,
      dev: true,
      logger: pino({ level: 'silent' }),
      fallback: serveDemo(DEMO_DIR),
    })
  let server = make()
  const { port } = await server.listen(0, '127.0.0.1')
  const d: DemoServer = {
    url: `http://127.0.0.1:${port}`,
    database,
    server,
    stop: () => server.close(),
    async start() {
      server = make()
      d.server = server
      await server.listen(port, '127.0.0.1')
    },
    async dispose() {
      await server.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
  return d
}

/** A page that records console errors and page errors, so a test can assert there were none. */
export async function openPage(context: BrowserContext, url: string): Promise<{ page: Page; problems: string[] }> {
  const page = await context.newPage()
  const problems: string[] = []
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`console.${msg.type()}: ${msg.text()}`)
  })
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`))
  await page.goto(url)
  return { page, problems }
}

/** Saves a screenshot as a test artifact (test-results/e2e, not committed). */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true })
  const path = join(ARTIFACTS, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  return path
}

/** POSTs to the publish API. */
export async function publish(url: string, body: Record<string, unknown>): Promise<number> {
  const res = await fetch(`${url}/api/notifications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify(body),
  })
  return res.status
}

/** Publishes to the topic `deploys`, answering how many users it reached. */
export async function topicRecipients(url: string): Promise<number> {
  const res = await fetch(`${url}/api/notifications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify({ topic: 'deploys', title: 'deploy', body: '' }),
  })
  return ((await res.json()) as { recipients: number }).recipients
}

/** Subscribes a signed-in demo page to `deploys` from its Topics card, reloads it, and waits for the chip again. */
export async function subscribeAndReload(page: Page, url: string): Promise<void> {
  await page.locator('[data-testid="topic-input"]').fill('deploys')
  await page.locator('[data-testid="subscribe"]').click()
  await page.locator('[data-testid="topic"][data-topic="deploys"]').waitFor()
  await expect.poll(() => topicRecipients(url)).toBe(1)
  await page.reload()
  await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
  await page.locator('[data-testid="topic"][data-topic="deploys"]').waitFor({ timeout: 5_000 })
}

/**
 * With two notifications in `user`'s inbox and `path` (a demo page of that
 * user) open with its inbox showing both unread: the page's network goes; on
 * another device the user marks all read, or the newest; the network comes
 * back. Answers the page, online again.
 */
export async function readElsewhereWhileOffline(e2e: DemoSession, path: string, user: string, what: 'all' | 'the newest'): Promise<Page> {
  const online = (p: Page, state = 'online') => p.locator(`[data-testid="status"][data-state="${state}"]`).waitFor({ timeout: 15_000 })
  for (const n of [1, 2]) expect(await publish(e2e.demo.url, { userId: user, title: `n${n}`, body: '' })).toBe(201)
  const page = await e2e.open(path)
  await online(page)
  await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '2')
  await page.locator('[data-testid="bell"]').click()
  await page.locator('[data-testid="inbox-item"]').nth(1).waitFor()
  expect(await readFlags(page)).toEqual(['false', 'false'])
  await e2e.context.setOffline(true)
  await online(page, 'offline')
  const other = await e2e.context.browser()!.newContext()
  try {
    const device = await other.newPage()
    await device.goto(`${e2e.demo.url}${path}`)
    await online(device)
    await device.locator('[data-testid="bell"]').click()
    await device.locator('[data-testid="inbox-item"]').nth(1).waitFor()
    await device.locator(what === 'all' ? '[data-testid="mark-all"]' : '[data-testid="mark-read"] >> nth=0').click()
    await device.waitForFunction(
      (left) => (document.querySelector('[data-testid="badge"]')?.textContent || '0') === left,
      what === 'all' ? '0' : '1',
    )
  } finally {
    await other.close()
  }
  await e2e.context.setOffline(false)
  await online(page)
  return page
}

/**
 * Shows or hides a page as far as the page can tell: sets the `visible` flag that the desktop tests' init
 * scripts make `document.visibilityState` read, and tells the page.
 */
export const setVisible = (page: Page, visible: boolean) =>
  page.evaluate((visible) => {
    ;(window as unknown as { visible: boolean }).visible = visible
    document.dispatchEvent(new Event('visibilitychange'))
  }, visible)

/** The inbox items' read flags, as shown (newest first). */
export const readFlags = (page: Page) =>
  page.locator('[data-testid="inbox-item"]').evaluateAll((li) => li.map((l) => l.getAttribute('data-read')))

/** A test file's demo: the server and browser context of the test that runs, and the pages it opened. */
export interface DemoSession {
  readonly demo: DemoServer
  readonly context: BrowserContext
  /** The pages this test opened, with what each logged as an error or warning. */
  readonly pages: { page: Page; problems: string[] }[]
  /** Opens `path` of the demo in this test's context; its console is checked after the test. */
  open(path: string): Promise<Page>
  /** Lets console lines matching `pattern` pass in this test (Chromium's own log of a connection it could not make). */
  allow(pattern: RegExp): void
}

/**
 * The lifecycle every demo e2e file shares: one Chromium for the file; for
 * each test a fresh demo server and browser context; after it a screenshot of
 * each page it opened (test-results/e2e/<prefix><test>-<i>.png), and the
 * check that no page logged an error or warning but what the test allowed.
 */
export function useDemo(prefix: string, viewport: { width: number; height: number }): DemoSession {
  let browser: Browser
  let demo: DemoServer | undefined
  let context: BrowserContext | undefined
  let allowed: RegExp | undefined
  const pages: { page: Page; problems: string[] }[] = []
  beforeAll(async () => {
    browser = await launchBrowser()
  })
  afterAll(async () => {
    await browser?.close()
  })
  beforeEach(async () => {
    demo = await startDemoServer()
    context = await browser.newContext({ viewport })
  })
  afterEach(async (ctx) => {
    const pass = allowed
    const problems = pages.flatMap((p) => p.problems).filter((p) => !pass?.test(p))
    allowed = undefined
    for (const [i, p] of pages.entries()) {
      if (!p.page.isClosed()) await screenshot(p.page, `${prefix}${ctx.task.name.replace(/\W+/g, '-')}-${i}`).catch(() => undefined)
    }
    pages.length = 0
    await context?.close()
    await demo?.dispose()
    expect(problems).toEqual([])
  })
  return {
    get demo() {
      return demo!
    },
    get context() {
      return context!
    },
    pages,
    async open(path) {
      const opened = await openPage(context!, `${demo!.url}${path}`)
      pages.push(opened)
      return opened.page
    },
    allow(pattern) {
      allowed = pattern
    },
  }
}
