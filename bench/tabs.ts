/**
 * `npm run bench:tabs`: belfry/shared in Chromium. Pages of the demo as one
 * user in one browser profile, with and without `?share=1`:
 *
 * - the server's sockets for N pages;
 * - failover: the time from the leader page closing, crashing (CDP
 *   `Page.crash`) or freezing (paused in the debugger: headless Chromium does
 *   not freeze a page on CDP's lifecycle command) to another page leading,
 *   online; each round publishes during the failover and checks that every
 *   remaining page got every notification once, in order.
 *
 * Environment: BENCH_TABS_ROUNDS (5). Prints a markdown section and writes it
 * into bench/RESULTS.md between its markers (kept by `npm run bench`).
 */
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { BrowserContext, Page } from 'playwright-core'
import { type DemoServer, launchBrowser, publish, startDemoServer } from '../test/e2e/harness.js'
import { fmt, median, SECTION, section, table } from './report.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const ROUNDS = Number(process.env.BENCH_TABS_ROUNDS) || 5

interface Seen {
  seqs: number[]
  /** When this page's client went online as the leader (ms since the epoch), the latest. */
  ledAt: number
}

async function open(context: BrowserContext, demo: DemoServer, share: boolean): Promise<Page> {
  const page = await context.newPage()
  await page.goto(`${demo.url}/?user=ann${share ? '&share=1' : ''}`)
  await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
  await page.evaluate(() => {
    type Client = { on(type: string, f: (e: { seq: number; to: string; mode: string }) => void): void }
    const w = window as unknown as { seen: Seen; belfry: Client }
    w.seen = { seqs: [], ledAt: 0 }
    w.belfry.on('notification', (n) => w.seen.seqs.push(n.seq))
    w.belfry.on('status', (s) => {
      if (s.to === 'online' && s.mode === 'leader') w.seen.ledAt = Date.now()
    })
  })
  return page
}

const seen = (page: Page) => page.evaluate(() => (window as unknown as { seen: Seen }).seen)
const modeOf = (page: Page) => page.locator('[data-testid="mode"]').getAttribute('data-mode')
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function until<T>(get: () => Promise<T | undefined>, what: string, timeout = 30_000): Promise<T> {
  const end = Date.now() + timeout
  for (;;) {
    const v = await get()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`not within ${timeout} ms: ${what}`)
    await sleep(10)
  }
}

type Failure = 'close' | 'crash' | 'freeze'

/** One round: 3 pages, the leader fails, 50 publishes meanwhile; the failover time and what each page got. */
async function failover(context: BrowserContext, demo: DemoServer, how: Failure, from: number): Promise<{ ms: number; ok: boolean }> {
  const pages = [await open(context, demo, true), await open(context, demo, true), await open(context, demo, true)]
  const modes = await Promise.all(pages.map(modeOf))
  const leader = pages[modes.indexOf('leader')]!
  const rest = pages.filter((p) => p !== leader)
  const at = Date.now()
  if (how === 'close') await leader.close()
  else if (how === 'crash') void (await context.newCDPSession(leader)).send('Page.crash').catch(() => undefined)
  else {
    const cdp = await context.newCDPSession(leader)
    await cdp.send('Debugger.enable')
    await cdp.send('Debugger.pause')
  }
  const publishing = (async () => {
    for (let i = 0; i < 50; i++) await publish(demo.url, { userId: 'ann', title: `n${i}`, body: '' })
  })()
  const ledAt = await until(async () => {
    const led = (await Promise.all(rest.map(seen))).map((s) => s.ledAt).filter((t) => t > at)
    return led.length > 0 ? Math.min(...led) : undefined
  }, `a new leader after ${how}`)
  await publishing
  const want = Array.from({ length: 50 }, (_, i) => from + i)
  const got = await until(async () => {
    const all = await Promise.all(rest.map(seen))
    return all.every((s) => s.seqs.length >= want.length) ? all : undefined
  }, 'every notification')
  await Promise.all(pages.map((p) => p.close().catch(() => undefined)))
  return { ms: ledAt - at, ok: got.every((s) => JSON.stringify(s.seqs) === JSON.stringify(want)) }
}

async function main(): Promise<string> {
  execFileSync(process.execPath, ['node_modules/vite/bin/vite.js', 'build', '--config', 'demo/vite.config.ts', '--logLevel', 'warn'], {
    cwd: ROOT,
    stdio: 'inherit',
  })
  const browser = await launchBrowser()
  const rows: string[][] = []
  try {
    for (const n of [1, 3, 5, 8]) {
      const counts: number[] = []
      for (const share of [false, true]) {
        const demo = await startDemoServer()
        const context = await browser.newContext()
        for (let i = 0; i < n; i++) await open(context, demo, share)
        await sleep(200)
        counts.push(demo.server.stats().connections)
        await context.close()
        await demo.dispose()
      }
      rows.push([`server sockets for ${n} page${n > 1 ? 's' : ''} of one user`, String(counts[0]), String(counts[1])])
    }
    const failovers: string[][] = []
    for (const how of ['close', 'crash', 'freeze'] as const) {
      const times: number[] = []
      let clean = 0
      for (let round = 0; round < ROUNDS; round++) {
        const demo = await startDemoServer()
        const context = await browser.newContext()
        const { ms, ok } = await failover(context, demo, how, 1)
        times.push(ms)
        if (ok) clean++
        await context.close()
        await demo.dispose()
      }
      failovers.push([
        `leader page ${how === 'freeze' ? 'frozen' : how === 'close' ? 'closed' : 'crashed'}`,
        `${fmt(median(times), 0)} ms`,
        `${fmt(Math.max(...times), 0)} ms`,
        `${clean} of ${ROUNDS}`,
      ])
    }
    return [
      SECTION.start,
      '## One socket per browser (belfry/shared)',
      '',
      `Generated by \`npm run bench:tabs\` (bench/tabs.ts) on ${new Date().toISOString()}: Chromium, demo pages of one user in one profile.`,
      '',
      table(['measure', 'a socket per page', '`?share=1`'], rows),
      '',
      `Failover, ${ROUNDS} rounds each: from the leader page's end to another page online as the leader; 50 notifications published meanwhile.`,
      '',
      table(['failure', 'median', 'worst', 'every page got each once, in order'], failovers),
      SECTION.end,
    ].join('\n')
  } finally {
    await browser.close()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const fresh = await main()
  process.stdout.write(`${fresh}\n`)
  const path = `${ROOT}bench/RESULTS.md`
  const results = readFileSync(path, 'utf8')
  const old = section(results)
  writeFileSync(path, old ? results.replace(old, fresh) : `${results.trimEnd()}\n\n${fresh}\n`)
}
