import { afterEach, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import { memoryStorage, NotificationClient } from '../../src/index.js'
import { sharedConnection } from '../../src/shared/index.js'
import { FAST_BACKOFF, type Recorder, record } from '../helpers/client.js'
import { FakeLocks } from '../helpers/locks.js'
import { type TestServer, useServer } from '../helpers/server.js'

/**
 * Tabs of one user whose token providers fail (the session is gone: every tab
 * at once): each retries at the pace of a socket of its own (here a constant
 * backoff), however often it hears the other tabs or is hidden and shown. A
 * failing leader takes no silence for a frozen leader's until its own retry,
 * and has one retry pending at a time. (Regression: the other tab's words and
 * hidden beats undid that wait, and each steal added a retry chain: 30
 * provider calls in 4 s for two tabs of a 1 s backoff.)
 */
const start = useServer()
const clients: NotificationClient[] = []
afterEach(() => {
  for (const c of clients.splice(0)) c.close()
  vi.unstubAllGlobals()
})

function failingTab(s: TestServer, locks: FakeLocks, id: string, user = 'ann', backoff = 1000) {
  const tab = { calls: 0, fails: 0 }
  const client = new NotificationClient({
    url: s.wsUrl,
    // The first call (the tab joins its group) works; every later one fails (signed out).
    token: () => {
      if (++tab.calls > 1) throw new Error('signed out')
      return s.token(user)
    },
    WebSocket,
    backoff: () => backoff,
    storage: memoryStorage(),
    connection: sharedConnection({ beat: 50, stale: 200, locks: locks.forTab(id), BroadcastChannel }),
  })
  client.on('status', (e) => {
    if (e.reason === 'token or url failed') tab.fails++
  })
  client.on('error', () => {})
  clients.push(client)
  client.connect()
  return tab
}

describe('belfry/shared: two tabs whose token providers both fail', () => {
  it('each retries at the pace of its backoff (1 s), not every `stale` ms with a new retry chain per steal', async () => {
    const s = await start()
    const locks = new FakeLocks()
    const a = failingTab(s, locks, 'a')
    const b = failingTab(s, locks, 'b')
    // The same pace alone (another user, so another group): a tab on its own retries once a second.
    const lone = failingTab(s, new FakeLocks(), 'lone', 'bob')
    await new Promise((r) => setTimeout(r, 4_000))
    // 4 s at 1 s a retry: about 4 calls a tab after the one that joined (observed: lone 5, the pair about 30).
    expect(lone.calls).toBeLessThanOrEqual(7)
    expect(a.calls + b.calls).toBeLessThanOrEqual(14)
  })
  // The same fault in a tab alone: hidden, it takes every beat as the leader's word (lastWord = now, over its
  // "no steal before the retry"); shown again, it steals `stale` ms later, and each steal is one more retry chain.
  it('a tab alone that is hidden and shown again keeps its backoff’s pace (2 s), not one more retry chain per time shown', async () => {
    const s = await start()
    const doc = Object.assign(new EventTarget(), { hidden: false })
    vi.stubGlobal('document', doc)
    const alone = failingTab(s, new FakeLocks(), 'alone', 'ann', 2000)
    for (let i = 0; i < 7; i++) {
      doc.hidden = true
      await new Promise((r) => setTimeout(r, 200))
      doc.hidden = false
      await new Promise((r) => setTimeout(r, 500))
    }
    // ~4.9 s at 2 s a retry: the join's call and about 3 retries (observed: about 12, more the longer it goes on).
    expect(alone.calls).toBeLessThanOrEqual(6)
  })
})

describe('belfry/shared: a leader whose token provider hangs', () => {
  it('hands the lock on at connectTimeout, as one whose provider fails does, so a tab whose provider works leads', async () => {
    const t = await start()
    const locks = new FakeLocks()
    let hang = false
    const tab = (id: string, token: () => Promise<string>): { client: NotificationClient; events: Recorder } => {
      const client = new NotificationClient({
        url: t.wsUrl,
        token,
        WebSocket,
        backoff: FAST_BACKOFF,
        connectTimeout: 300,
        storage: memoryStorage(),
        connection: sharedConnection({ beat: 50, stale: 200, locks: locks.forTab(id), BroadcastChannel }),
      })
      clients.push(client)
      return { client, events: record(client) }
    }
    // Tab 1 leads; its token fetch answers once (the tab joins ann's group), then hangs (a stalled request).
    const one = tab('tab1', () => (hang ? new Promise<string>(() => {}) : t.token('ann')))
    one.client.connect()
    await one.client.ready({ timeout: 5000 })
    expect(one.client.mode).toBe('leader')
    const two = tab('tab2', () => t.token('ann'))
    two.client.connect()
    await expect.poll(() => two.client.state, { timeout: 5000 }).toBe('online')
    // The leader's socket drops; its next token call never settles.
    hang = true
    await t.restart()
    await expect.poll(() => one.events.statuses.some((s) => s.from === 'online'), { timeout: 5000 }).toBe(true)
    await expect
      .poll(() => one.events.errors.map((e) => e.message), { timeout: 5000 })
      .toContain('url or token provider did not answer within connectTimeout')
    // Tab 2's provider works: it leads and the user's tabs go online. (Regression: the hung call ended each attempt
    // with the reason 'connect timeout', on which tab 1 kept the lock, retrying on the same call for ever.)
    await expect.poll(() => [one.client.state, two.client.state], { timeout: 6000 }).toContain('online')
    expect(two.client.mode).toBe('leader')
  })
})
