/**
 * belfry/shared in Chromium: the leader's token provider fails (its tab's own
 * session is gone), while another tab's provider works. Only the leader's tab
 * ever calls its provider for the socket, and a provider that throws makes the
 * leader's link retry forever while it keeps the lock and keeps beating: no
 * other tab may lead, so every tab of the user stays offline. With a socket
 * per tab, only the broken tab would be.
 */
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { publish, useDemo } from './harness.js'

const e2e = useDemo('review-shared-token-', { width: 1000, height: 700 })

async function tab(): Promise<Page> {
  const page = await e2e.open('/?user=ann&share=1')
  await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
  await page.evaluate(() => {
    const w = window as unknown as { seqs: number[]; belfry: { on(type: 'notification', f: (n: { seq: number }) => void): void } }
    w.seqs = []
    w.belfry.on('notification', (n) => w.seqs.push(n.seq))
  })
  return page
}

const modeOf = (page: Page) => page.evaluate(() => (window as unknown as { belfry: { mode: string } }).belfry.mode)
const stateOf = (page: Page) => page.evaluate(() => (window as unknown as { belfry: { state: string } }).belfry.state)
const seqsOf = (page: Page) => page.evaluate(() => (window as unknown as { seqs: number[] }).seqs)

describe('belfry/shared: the leader tab’s token provider fails', () => {
  it('lets a tab whose token provider works take the socket: the user’s other tabs do not stay offline', async () => {
    // The leader tab's token requests fail in the browser (its console says so).
    e2e.allow(/Failed to load resource/)
    const two = [await tab(), await tab()]
    const leader = (await modeOf(two[0]!)) === 'leader' ? two[0]! : two[1]!
    const other = two.find((p) => p !== leader)!
    expect(await modeOf(other)).toBe('follower')

    // The leader tab's session is gone (its provider throws); the other tab's provider still works.
    await leader.route('**/api/dev/token*', (route) => route.abort())
    // The shared socket drops (a deploy, a network blip): the leader has to reconnect with a fresh token.
    expect((await fetch(`${e2e.demo.url}/api/dev/drop?user=ann`, { method: 'POST' })).ok).toBe(true)
    await expect.poll(() => stateOf(other), { timeout: 3_000 }).not.toBe('online')

    // The other tab could connect (its provider works): within a few seconds it is online again and gets what is published.
    await expect.poll(() => stateOf(other), { timeout: 12_000, interval: 250 }).toBe('online')
    expect(await publish(e2e.demo.url, { userId: 'ann', title: 'after the drop', body: '' })).toBe(201)
    await expect.poll(() => seqsOf(other), { timeout: 5_000 }).toEqual([1])
  })
})
