/**
 * belfry/shared in Chromium: pages of the demo with `?share=1`, signed in as
 * one user in one browser context (one profile: its pages share Web Locks and
 * BroadcastChannel). The server counts the sockets.
 */
import { rmSync } from 'node:fs'
import type { Page, Route } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { publish, useDemo } from './harness.js'

const e2e = useDemo('shared-', { width: 1000, height: 700 })

/** A demo page of `user` with sharing on, online, recording the seq of every notification its client hands over. */
async function tab(user = 'ann', share = true): Promise<Page> {
  const page = await e2e.open(`/?user=${user}${share ? '&share=1' : ''}`)
  await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
  await page.evaluate(() => {
    const w = window as unknown as { seqs: number[]; belfry: { on(type: 'notification', f: (n: { seq: number }) => void): void } }
    w.seqs = []
    w.belfry.on('notification', (n) => w.seqs.push(n.seq))
  })
  return page
}

const modeOf = (page: Page) => page.locator('[data-testid="mode"]').getAttribute('data-mode')
const stateOf = (page: Page) => page.locator('[data-testid="status"]').getAttribute('data-state')
const seqsOf = (page: Page) => page.evaluate(() => (window as unknown as { seqs: number[] }).seqs)
const sockets = () => e2e.demo.server.stats().connections
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

async function leaderOf(list: Page[]): Promise<Page> {
  for (const page of list) if ((await modeOf(page)) === 'leader') return page
  throw new Error(`no leader among ${list.length} pages`)
}

async function until(check: () => Promise<boolean> | boolean, what: string, timeout = 20_000): Promise<number> {
  const start = Date.now()
  while (!(await check())) {
    if (Date.now() - start > timeout) throw new Error(`not within ${timeout} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return Date.now() - start
}

async function publishRange(from: number, to: number, user = 'ann'): Promise<void> {
  for (const i of range(from, to)) expect(await publish(e2e.demo.url, { userId: user, title: `n${i}`, body: '' })).toBe(201)
}

/** Every page got exactly `seqs`, in order. */
async function everyPageHas(list: Page[], seqs: number[]): Promise<void> {
  for (const page of list) await until(async () => (await seqsOf(page)).length >= seqs.length, `${seqs.length} notifications`)
  for (const page of list) expect(await seqsOf(page)).toEqual(seqs)
}

describe('belfry/shared in Chromium', () => {
  it('opens one server socket for 3 and for 5 pages of one user, and shows each page its mode', async () => {
    const three = [await tab(), await tab(), await tab()]
    expect(sockets()).toBe(1)
    expect((await Promise.all(three.map(modeOf))).sort()).toEqual(['follower', 'follower', 'leader'])
    const five = [...three, await tab(), await tab()]
    expect(sockets()).toBe(1)
    await publishRange(1, 5)
    await everyPageHas(five, range(1, 5))
    expect(await five[4]!.locator('[data-testid="badge"]').textContent()).toBe('5')
  })

  it('loses and doubles nothing when the leader page closes at #100 of 300', async () => {
    const three = [await tab(), await tab(), await tab()]
    const leader = await leaderOf(three)
    const rest = three.filter((p) => p !== leader)
    const publishing = publishRange(1, 300)
    await until(async () => (await seqsOf(rest[0]!)).length >= 100, '100 notifications')
    await leader.close()
    await until(async () => (await Promise.all(rest.map(modeOf))).includes('leader'), 'a new leader', 5_000)
    await publishing
    await everyPageHas(rest, range(1, 300))
    await until(() => sockets() === 1, 'one socket')
  })

  it('fails over when the leader page crashes', async () => {
    const three = [await tab(), await tab(), await tab()]
    const leader = await leaderOf(three)
    const rest = three.filter((p) => p !== leader)
    await publishRange(1, 10)
    await everyPageHas(three, range(1, 10))
    const crashed = new Promise((resolve) => leader.once('crash', resolve))
    const cdp = await e2e.context.newCDPSession(leader)
    void cdp.send('Page.crash').catch(() => undefined) // never answered: the session dies with the page
    await crashed
    await until(async () => (await Promise.all(rest.map(modeOf))).includes('leader'), 'a new leader', 5_000)
    await publishRange(11, 20)
    await everyPageHas(rest, range(1, 20))
    await until(() => sockets() === 1, 'one socket')
  })

  /**
   * Headless Chromium accepts CDP's `Page.setWebLifecycleState: frozen` but
   * does not freeze the page (its timers run on: checked). Pausing the page in
   * the debugger does what a freeze does to it: no task runs, no timer fires,
   * no message is read, while it keeps its lock and the browser keeps its socket.
   */
  it('replaces a frozen leader, which steps down and closes its socket when it wakes, having missed nothing', async () => {
    const three = [await tab(), await tab(), await tab()]
    const leader = await leaderOf(three)
    const rest = three.filter((p) => p !== leader)
    await publishRange(1, 5)
    await everyPageHas(three, range(1, 5))
    const cdp = await e2e.context.newCDPSession(leader)
    await cdp.send('Debugger.enable')
    await cdp.send('Debugger.pause')
    await until(async () => (await Promise.all(rest.map(modeOf))).includes('leader'), 'a new leader')
    await publishRange(6, 10)
    await everyPageHas(rest, range(1, 10))
    // Frozen, it still holds its socket (the browser answers the server's pings); awake, it lets go.
    expect(sockets()).toBe(2)
    await cdp.send('Debugger.resume')
    await until(async () => (await modeOf(leader)) === 'follower', 'the old leader follows')
    await until(() => sockets() === 1, 'one socket')
    await publishRange(11, 12)
    await everyPageHas(three, range(1, 12))
  })

  it('falls back to a socket per page without Web Locks, and still hands over each notification once', async () => {
    await e2e.context.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined })
    })
    const three = [await tab(), await tab(), await tab()]
    expect(sockets()).toBe(3)
    expect(await Promise.all(three.map(modeOf))).toEqual(['solo', 'solo', 'solo'])
    await publishRange(1, 20)
    await everyPageHas(three, range(1, 20))
  })

  it('clears the badge on every page when one page marks all read', async () => {
    const three = [await tab(), await tab(), await tab()]
    await publishRange(1, 3)
    for (const page of three) await page.waitForFunction(() => document.querySelector('[data-testid="badge"]')?.textContent === '3')
    const leader = await leaderOf(three)
    const follower = three.find((p) => p !== leader)!
    await follower.locator('[data-testid="bell"]').click()
    await follower.locator('[data-testid="mark-all"]').click()
    for (const page of three) await page.locator('[data-testid="badge"]').waitFor({ state: 'hidden' })
    expect(sockets()).toBe(1)
  })

  it('puts right the unread count of a page that slept through a read change made in another page, from the leader’s beats', async () => {
    const three = [await tab(), await tab(), await tab()]
    const leader = await leaderOf(three)
    const [marker, sleeper] = three.filter((p) => p !== leader) as [Page, Page]
    const unreadOf = (page: Page) => page.evaluate(() => (window as unknown as { belfry: { unreadCount: number } }).belfry.unreadCount)
    await publishRange(1, 5)
    await everyPageHas(three, range(1, 5))
    // Paused, the sleeper misses the leader's messages: the read change, and the next notification (fetched when it wakes).
    const cdp = await e2e.context.newCDPSession(sleeper)
    await cdp.send('Debugger.enable')
    await cdp.send('Debugger.pause')
    await marker.evaluate(() => (window as unknown as { belfry: { markAllRead(): Promise<unknown> } }).belfry.markAllRead())
    await publishRange(6, 6)
    await until(async () => (await unreadOf(marker)) === 1 && (await unreadOf(leader)) === 1, 'the awake pages count 1 unread')
    await cdp.send('Debugger.resume')
    await until(async () => (await seqsOf(sleeper)).length === 6, 'the sleeper has all 6 notifications')
    await until(async () => (await unreadOf(sleeper)) === 1, 'the sleeper counts 1 unread', 6_000)
    await until(async () => (await sleeper.locator('[data-testid="badge"]').textContent()) === '1', 'the sleeper’s badge says 1', 1_000)
  })

  it('stores the new numbering after the server starts over on another database: a page opened later gets what came while no page was open', async () => {
    // Every page records from its start: the last one gets its first notifications as it connects.
    await e2e.context.addInitScript(() => {
      const w = window as unknown as { seqs: number[]; _b: unknown }
      w.seqs = []
      Object.defineProperty(window, 'belfry', {
        configurable: true,
        get: () => w._b,
        set(client: { on(type: 'notification', f: (n: { seq: number }) => void): void }) {
          client.on('notification', (n) => w.seqs.push(n.seq))
          w._b = client
        },
      })
    })
    const open = async () => {
      const page = await e2e.open('/?user=ann&share=1')
      await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
      return page
    }
    const first = await open()
    await publishRange(1, 5)
    await everyPageHas([first], range(1, 5))

    // The server starts over on an empty database; the page takes its numbering and gets its 1 and 2.
    // (A retry while no server runs logs its refused connection.)
    e2e.allow(/net::ERR_CONNECTION_REFUSED|WebSocket connection to '.*' failed/)
    await e2e.demo.stop()
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${e2e.demo.database}${suffix}`, { force: true })
    await e2e.demo.start()
    await first.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 10_000 })
    await publishRange(1, 2)
    await everyPageHas([first], [...range(1, 5), 1, 2])

    // Every page closed, two more come, the user opens the app again: it resumes from the profile's 2, not the old 5
    // (which the server would clamp to its latest, 4, replaying nothing).
    await first.close()
    await publishRange(3, 4)
    await everyPageHas([await open()], [3, 4])
  })

  it('hands a follower live notifications again within connectTimeout while its token provider hangs after the leader’s socket dropped', async () => {
    // The follower's token requests hang (aborted at the end): Chromium logs the aborted ones.
    e2e.allow(/Failed to load resource/)
    const two = [await tab(), await tab()]
    const leader = await leaderOf(two)
    const follower = two.find((p) => p !== leader)!
    await publishRange(1, 1)
    await everyPageHas(two, [1])

    // The follower's token endpoint takes each request and never answers; the shared socket drops: the follower asks
    // its provider who its user is, which hangs.
    const hanging: Route[] = []
    await follower.route('**/api/dev/token*', (route) => void hanging.push(route))
    try {
      expect((await fetch(`${e2e.demo.url}/api/dev/drop?user=ann`, { method: 'POST' })).ok).toBe(true)
      await until(() => hanging.length > 0, 'a token request', 5_000)
      await until(async () => (await stateOf(leader)) === 'online' && (await stateOf(follower)) === 'online', 'both online', 10_000)
      // The leader gets them at once; the follower (online) once its check gave up, within connectTimeout (10 s).
      await publishRange(2, 4)
      await everyPageHas([leader], range(1, 4))
      await until(async () => (await seqsOf(follower)).length >= 4, 'the follower’s 4', 12_000)
      expect(await seqsOf(follower)).toEqual(range(1, 4))
    } finally {
      for (const route of hanging) await route.abort().catch(() => undefined)
    }
  })

  it('hands the socket to a page whose token provider works when the leader page’s provider fails', async () => {
    // The leader page's token requests fail in the browser (its console says so).
    e2e.allow(/Failed to load resource/)
    const two = [await tab(), await tab()]
    const leader = await leaderOf(two)
    const other = two.find((p) => p !== leader)!

    // The leader page's session is gone (its provider throws); the other page's provider still works. The shared
    // socket drops (a deploy, a network blip): the leader needs a fresh token to reconnect.
    await leader.route('**/api/dev/token*', (route) => route.abort())
    expect((await fetch(`${e2e.demo.url}/api/dev/drop?user=ann`, { method: 'POST' })).ok).toBe(true)
    await until(async () => (await stateOf(other)) !== 'online', 'the other page offline', 3_000)

    // The other page leads within a few seconds, online, and gets what is published.
    await until(async () => (await modeOf(other)) === 'leader' && (await stateOf(other)) === 'online', 'the other page leads', 12_000)
    await publishRange(1, 1)
    await everyPageHas([other], [1])
    expect(sockets()).toBe(1)
  })

  it('turns sharing on and off with the toggle', async () => {
    const page = await tab('ann', false)
    expect(await modeOf(page)).toBe('solo')
    await page.locator('[data-testid="share"]').check()
    await page.waitForURL(/share=1/)
    await page.locator('[data-testid="status"][data-state="online"]').waitFor()
    expect(await modeOf(page)).toBe('leader')
  })
})
