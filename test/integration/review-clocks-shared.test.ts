/**
 * Review (clocks): belfry/shared measures the leader's silence (`lastWord`) on the wall clock (Date.now()).
 * - Stepped back an hour (NTP correcting a fast clock; a laptop whose time was wrong), `Date.now() - lastWord` is
 *   negative for an hour (and `Math.max(lastWord, Date.now())` keeps the old, later, value at every beat): a leader
 *   that freezes in that hour (a background tab the browser froze) is replaced by no visible tab for an hour, and no
 *   tab of the user gets a notification meanwhile.
 * - Stepped forward a few seconds (between `stale` and `stale` + 2 beats: 2.5 to 5 s with the defaults), the silence
 *   looks like `stale` passed: a visible follower steals the lock from a leader that beats on, and the user's socket
 *   is closed and opened again for nothing.
 * Real server, Node's BroadcastChannel and the fake Web Locks, as test/integration/shared.test.ts.
 */
import { afterEach, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import { memoryStorage, NotificationClient } from '../../src/index.js'
import { sharedConnection } from '../../src/shared/index.js'
import { FAST_BACKOFF, type Recorder, range, record } from '../helpers/client.js'
import { FakeLocks } from '../helpers/locks.js'
import { httpPublish, type TestServer, useServer } from '../helpers/server.js'

const start = useServer()

interface Tab {
  client: NotificationClient
  events: Recorder
  /** Stops (or resumes) saying anything on the channel: no beats, no frames, as a frozen tab. */
  freeze(frozen: boolean): void
  /** Runs once, just after the tab has taken the next beat (a leader's state message) it hears. */
  afterBeat(fn: () => void): void
}

let locks = new FakeLocks()
const tabs: Tab[] = []
afterEach(() => {
  vi.useRealTimers()
  for (const t of tabs.splice(0)) t.client.close()
  locks = new FakeLocks()
})

let tabCount = 0
function openTab(s: TestServer, beat: number, stale: number): Tab {
  const id = `tab${++tabCount}`
  let frozen = false
  let onBeat: (() => void) | undefined
  class TabChannel extends BroadcastChannel {
    constructor(name: string) {
      super(name)
      this.addEventListener('message', (e) => {
        const fn = onBeat
        if (!fn || !(e as MessageEvent).data?.s) return
        onBeat = undefined
        setTimeout(fn, 0) // after the tab's own handler took it
      })
    }
    override postMessage(m: unknown): void {
      if (!frozen) super.postMessage(m)
    }
  }
  const client = new NotificationClient({
    url: s.wsUrl,
    WebSocket,
    token: () => s.token('ann'),
    backoff: FAST_BACKOFF,
    storage: memoryStorage(),
    connection: sharedConnection({ beat, stale, locks: locks.forTab(id), BroadcastChannel: TabChannel }),
  })
  const tab: Tab = {
    client,
    events: record(client),
    freeze(f) {
      frozen = f
    },
    afterBeat(fn) {
      onBeat = fn
    },
  }
  tabs.push(tab)
  client.connect()
  return tab
}

const modeOf = (t: Tab) => t.events.statuses.at(-1)?.mode
const publish = async (s: TestServer, from: number, to: number) => {
  for (const i of range(from, to)) expect((await httpPublish(s.url, { userId: 'ann', title: `n${i}`, body: '' })).status).toBe(201)
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

it('replaces a frozen leader within `stale` after the wall clock stepped back an hour', async () => {
  // belfry/shared reads Date, running at real speed, which the test steps back.
  vi.useFakeTimers({ toFake: ['Date'], now: Date.now(), shouldAdvanceTime: true })
  const s = await start()
  const [first, second] = [openTab(s, 50, 200), openTab(s, 50, 200)]
  await Promise.all([first, second].map((t) => t.client.ready()))
  const leader = modeOf(first) === 'leader' ? first : second
  const follower = leader === first ? second : first
  await publish(s, 1, 3)
  await vi.waitFor(() => expect(follower.events.seqs()).toEqual(range(1, 3)), 10_000)

  // NTP steps the clock back an hour; a little later the leader's tab is frozen in the background.
  vi.setSystemTime(Date.now() - 3_600_000)
  await sleep(300)
  leader.freeze(true)

  // The visible follower takes over after 200 ms of silence (5 s allowed), and gets what is published.
  await vi.waitFor(() => expect(modeOf(follower)).toBe('leader'), 5_000)
  await publish(s, 4, 5)
  await vi.waitFor(() => expect(follower.events.seqs()).toEqual(range(1, 5)), 10_000)
}, 30_000)

it('leaves a leader that beats on its lock when the wall clock steps forward a few seconds (no socket flap)', async () => {
  vi.useFakeTimers({ toFake: ['Date'], now: Date.now(), shouldAdvanceTime: true })
  const s = await start()
  // beat 500 ms, stale 3 s: a silence between 3 s and 4 s reads as a dead leader (the defaults: 3 s and 5 s).
  const [first, second] = [openTab(s, 500, 3000), openTab(s, 500, 3000)]
  await Promise.all([first, second].map((t) => t.client.ready()))
  const leader = modeOf(first) === 'leader' ? first : second
  const follower = leader === first ? second : first
  await sleep(1200) // a few beats heard

  // NTP steps the clock forward 3.2 s (just after a beat reached the follower). The leader beats on every 500 ms.
  await new Promise<void>((resolve) =>
    follower.afterBeat(() => {
      vi.setSystemTime(Date.now() + 3200)
      resolve()
    }),
  )
  await sleep(2000)

  expect([modeOf(leader), modeOf(follower)]).toEqual(['leader', 'follower'])
  expect(leader.events.count('online')).toBe(1)
  expect(follower.events.statuses.map((e) => e.reason)).not.toContain('step down')
}, 30_000)
