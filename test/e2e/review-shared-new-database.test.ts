/**
 * belfry/shared in Chromium: the server starts over on another database (its
 * numbering restarts). The client's rule (docs/protocol.md, "Client side";
 * README, "Failover"/"Exactly once") is to start its cursor over from the
 * server's numbering, and a solo client stores that cursor. belfry/shared's
 * storage wrapper (ownCursor) writes the stored cursor forward only, so the
 * profile keeps the old database's cursor: the next page, opened after the
 * tabs were closed, resumes from it and the server (which clamps a cursor
 * above its latest seq) replays nothing: what came while no tab was open is
 * never handed over.
 */
import { rmSync } from 'node:fs'
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { publish, useDemo } from './harness.js'

const e2e = useDemo('review-shared-newdb-', { width: 1000, height: 700 })

/** A demo page of ann with sharing on, recording every notification its client hands over from the very start. */
async function tab(): Promise<Page> {
  const page = await e2e.context.newPage()
  await page.addInitScript(() => {
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
  e2e.pages.push({ page, problems: [] })
  await page.goto(`${e2e.demo.url}/?user=ann&share=1`)
  await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
  return page
}

const seqsOf = (page: Page) => page.evaluate(() => (window as unknown as { seqs: number[] }).seqs)
const stateOf = (page: Page) => page.evaluate(() => (window as unknown as { belfry: { state: string } }).belfry.state)

async function publishN(n: number): Promise<void> {
  for (let i = 0; i < n; i++) expect(await publish(e2e.demo.url, { userId: 'ann', title: `n${i}`, body: '' })).toBe(201)
}

describe('belfry/shared: the server starts over on another database', () => {
  it('a page opened later resumes from the new numbering: it gets what came while no tab was open', async () => {
    const first = await tab()
    await publishN(5)
    await expect.poll(() => seqsOf(first)).toEqual([1, 2, 3, 4, 5])

    // The server starts over on an empty database.
    await e2e.demo.stop()
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${e2e.demo.database}${suffix}`, { force: true })
    await e2e.demo.start()
    await expect.poll(() => stateOf(first), { timeout: 10_000 }).toBe('online')

    // The tab takes the new numbering (as documented) and gets the new database's 1 and 2.
    await publishN(2)
    await expect.poll(() => seqsOf(first)).toEqual([1, 2, 3, 4, 5, 1, 2])

    // Every tab closed; two more notifications come; the user opens the app again.
    await first.close()
    await publishN(2)
    const next = await tab()
    // It resumes from seq 2 of the new database (what this profile got): 3 and 4 are handed over.
    // Stored is still 5, the old database's: the server clamps it to its latest, 4, and replays nothing.
    await expect.poll(() => seqsOf(next), { timeout: 5_000 }).toEqual([3, 4])
  })
})
