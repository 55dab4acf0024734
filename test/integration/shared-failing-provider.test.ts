import { afterEach, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import { memoryStorage, NotificationClient } from '../../src/index.js'
import { sharedConnection } from '../../src/shared/index.js'
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
