/**
 * Review (belfry/shared across tabs and processes): a follower tab that slept (paused, as test/e2e/shared.test.ts
 * freezes a page) while another tab marked everything read never gets the read change again. Its notifications
 * come back (a seq gap is filled from history), but the leader's beats, which carry the user's unread count in
 * their snapshot every second, are not applied to a follower that is online: its badge shows the old count.
 */
import { describe, expect, it } from 'vitest'
import { leaderOf, openTab, publishTo, rec, truth, until, useMix } from './review-mix-util.js'

const mix = useMix()

describe('belfry/shared on a 2-process cluster: a tab that slept through a read change', () => {
  it('shows the server’s unread count again once awake (the beats carry it)', async () => {
    const tabs = [await openTab(mix), await openTab(mix), await openTab(mix)]
    const leader = await leaderOf(tabs)
    const [marker, sleeper] = tabs.filter((p) => p !== leader) as [typeof leader, typeof leader]
    for (let i = 0; i < 5; i++) expect((await publishTo(mix.nodes[i % 2]!, { userId: 'ann' })).status).toBe(201)
    for (const p of tabs) await until(async () => (await rec(p)).unread === 5, 'every tab counts 5 unread')

    // The sleeper sleeps; another follower marks all read; one more notification comes (a seq the sleeper must fetch).
    const cdp = await mix.context.newCDPSession(sleeper)
    await cdp.send('Debugger.enable')
    await cdp.send('Debugger.pause')
    await marker.evaluate(async () => {
      await (window as unknown as { belfry: { markAllRead(): Promise<unknown> } }).belfry.markAllRead()
    })
    expect((await publishTo(mix.nodes[1]!, { userId: 'ann' })).status).toBe(201)
    await until(async () => (await rec(marker)).unread === 1 && (await rec(leader)).unread === 1, 'the awake tabs count 1 unread')
    await cdp.send('Debugger.resume')

    // Awake, it gets the missed notification (the gap is filled)...
    await until(async () => (await rec(sleeper)).seqs.length === 6, 'the sleeper has all 6 notifications')
    const server = await truth(mix)
    expect(server.unread).toBe(1)
    // ...but its unread count (and badge) should agree with the server's and the other tabs' within a few beats.
    await expect.poll(async () => (await rec(sleeper)).unread, { timeout: 6_000, interval: 200 }).toBe(server.unread)
    await expect.poll(() => sleeper.locator('[data-testid="badge"]').textContent(), { timeout: 1_000 }).toBe(String(server.unread))
  })
})
