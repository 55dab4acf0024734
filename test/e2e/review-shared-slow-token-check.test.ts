/**
 * belfry/shared in Chromium: when the leader's socket drops, each follower
 * asks its own token provider who its user is, and until the provider answers
 * it hands its app no live notification (src/shared/index.ts: `if (cursor &&
 * checking) return`, and fill() waits too). The check has no time limit,
 * unlike a socket's own attempt (connectTimeout): a provider that hangs (a
 * token endpoint that accepted the request and never answers) leaves the
 * follower saying `online` while the leader's socket is back and its app gets
 * nothing, for as long as the request hangs.
 */
import type { Page, Route } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { publish, useDemo } from './harness.js'

const e2e = useDemo('review-shared-check-', { width: 1000, height: 700 })

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

describe('belfry/shared: a follower’s user check after the leader’s socket drops', () => {
  it('does not hold back a follower’s live notifications while its token provider hangs (the tab says online)', async () => {
    e2e.allow(/Failed to load resource/)
    const two = [await tab(), await tab()]
    const leader = (await modeOf(two[0]!)) === 'leader' ? two[0]! : two[1]!
    const follower = two.find((p) => p !== leader)!
    expect(await modeOf(follower)).toBe('follower')
    expect(await publish(e2e.demo.url, { userId: 'ann', title: 'n1', body: '' })).toBe(201)
    for (const page of two) await expect.poll(() => seqsOf(page)).toEqual([1])

    // The follower's token endpoint takes the request and never answers.
    const hanging: Route[] = []
    await follower.route('**/api/dev/token*', (route) => void hanging.push(route))
    try {
      expect((await fetch(`${e2e.demo.url}/api/dev/drop?user=ann`, { method: 'POST' })).ok).toBe(true)
      await expect.poll(() => hanging.length, { timeout: 5_000 }).toBeGreaterThan(0)
      // The leader reconnects (its provider works); the follower says online again.
      await expect.poll(() => stateOf(leader), { timeout: 10_000 }).toBe('online')
      await expect.poll(() => stateOf(follower), { timeout: 5_000 }).toBe('online')

      for (let i = 2; i <= 4; i++) expect(await publish(e2e.demo.url, { userId: 'ann', title: `n${i}`, body: '' })).toBe(201)
      await expect.poll(() => seqsOf(leader), { timeout: 5_000 }).toEqual([1, 2, 3, 4])
      // An online follower gets them too (well within connectTimeout, 10 s, + a few s).
      await expect.poll(() => seqsOf(follower), { timeout: 12_000, interval: 250 }).toEqual([1, 2, 3, 4])
    } finally {
      for (const route of hanging) await route.abort().catch(() => undefined)
    }
  })
})
