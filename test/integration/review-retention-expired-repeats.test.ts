/**
 * Review: a client whose cursor is below the floor of an inbox that retention
 * emptied is told `expired: true` once for that loss — not again on every
 * reconnect after it, when nothing more expired.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { ClientPool } from '../helpers/client.js'
import { prune, resuming } from '../helpers/retention.js'
import { authedClient, httpPublish, useServer } from '../helpers/server.js'

const start = useServer()
const clients = new ClientPool()
afterEach(() => clients.closeAll())

describe('review: retention, the expired hint of an emptied inbox', () => {
  it('says expired once; a reconnect after it, with nothing more removed, does not say it again', async () => {
    const t = await start()
    for (const i of [1, 2, 3]) expect((await httpPublish(t.url, { userId: 'ann', title: `n${i}`, body: '' })).status).toBe(201)
    // Everything ann has is older than ~9 ms: a pass by age empties the inbox (floor = latest = 3).
    await new Promise((r) => setTimeout(r, 30))
    expect(await prune(t, { days: 1e-7 })).toMatchObject({ removed: 3 })
    const raw = await authedClient(t, 'ann', { since: 1 })
    expect(raw.of('auth_success')[0]).toMatchObject({ seq: 3, oldestSeq: 3, unreadCount: 0 })
    raw.close()

    // A device that had seen seq 1: seqs 2 and 3 expired before it got them. It is told so.
    const behind = resuming(clients, t, 'ann', 1)
    behind.client.connect()
    await behind.client.ready()
    expect(behind.events.statuses.filter((s) => s.to === 'online')).toEqual([expect.objectContaining({ expired: true })])

    // The connection drops (a server restart, a network blip) and the client reconnects. Nothing
    // more was removed: it resumed from the floor last time, so there is no new loss to report.
    await t.restart()
    await expect.poll(() => behind.events.count('online'), { timeout: 10_000 }).toBe(2)
    const onlines = behind.events.statuses.filter((s) => s.to === 'online')
    expect(onlines[1], 'the second online status repeats the hint for the same, already reported loss').not.toHaveProperty('expired')
  })
})
