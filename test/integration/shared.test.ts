import { pino } from 'pino'
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import WebSocket from 'ws'
import { type CursorStorage, memoryStorage, NotificationClient } from '../../src/index.js'
import { NotificationServer } from '../../src/server/index.js'
import { sharedConnection } from '../../src/shared/index.js'
import { FAST_BACKOFF, type Recorder, range, record } from '../helpers/client.js'
import { FakeLocks } from '../helpers/locks.js'
import { prune } from '../helpers/retention.js'
import { API_KEY, httpPublish, SECRET, startServer, type TestServer, useServer } from '../helpers/server.js'

/**
 * belfry/shared in Node: the real server, Node's BroadcastChannel (shared by
 * every "tab" in this process) and a fake Web Locks manager. Each tab has its
 * own client, lock owner, channels and sockets, so a test can crash or
 * freeze one tab.
 */
const start = useServer()

interface Tab {
  id: string
  client: NotificationClient
  events: Recorder
  /** The groups (channel names) it joined, in order. */
  groups: string[]
  /** Its process dies: locks released, sockets cut, channel silent; its code never runs again. */
  crash(): void
  /** Stops (or resumes) saying anything on the channel: no beats, no frames, as a frozen tab. */
  freeze(frozen: boolean): void
  /**
   * A fuller freeze: nothing said, and what the tab would hear (messages, its lock's fate) waits.
   * `wake(lag)` hands it the lock's fate at once and the messages `lag` ms later, as a page
   * woken with overdue timers may run them first.
   */
  sleep(): void
  wake(lag: number): void
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
interface TabOptions {
  /** The user the tab's token names, asked at every token. */
  user?: string | (() => string)
  storage?: CursorStorage
  ackDelay?: number
  /** false: no Web Locks and no BroadcastChannel. */
  locks?: boolean
  /** Drops a message this tab would receive (a message lost): a frame the leader relays has its epoch `e`, the frame `f` and, for one tab alone, `to`. */
  lose?: (message: { e?: number; to?: string; f?: { type: string; seq?: number } }) => boolean
  /** sharedConnection's: 50 and 200 ms unless told. */
  beat?: number
  stale?: number
}

function openTab(s: TestServer, options: TabOptions = {}): Tab {
  const id = `tab${++tabCount}`
  let dead = false
  let frozen = false
  /** While asleep: the lock's fate waits for `woken`. */
  let asleep: { woken: Promise<void>; wake(): void } | undefined
  /** While asleep and until `lag` ms after it wakes: what the tab will hear, in order. */
  let unheard: Array<[BroadcastChannel, unknown]> | undefined
  let onBeat: (() => void) | undefined
  const sockets: WebSocket[] = []
  const channels: BroadcastChannel[] = []
  class TabSocket extends WebSocket {
    constructor(url: string | URL) {
      super(dead ? 'ws://127.0.0.1:1/' : url)
      sockets.push(this)
    }
  }
  class TabChannel extends BroadcastChannel {
    constructor(name: string) {
      super(name)
      channels.push(this)
      tab.groups.push(name)
      const lose = options.lose
      if (lose) this.addEventListener('message', (e) => lose((e as MessageEvent).data) && e.stopImmediatePropagation())
      this.addEventListener('message', (e) => {
        if (!unheard) return
        unheard.push([this, (e as MessageEvent).data])
        e.stopImmediatePropagation()
      })
      this.addEventListener('message', (e) => {
        const fn = onBeat
        if (!fn || !(e as MessageEvent).data?.s) return
        onBeat = undefined
        setTimeout(fn, 0) // after the tab's own handler took it
      })
    }
    override postMessage(m: unknown): void {
      if (!dead && !frozen) super.postMessage(m)
    }
  }
  const tabLocks = locks.forTab(id)
  /** Settles as the lock request did, once the tab is awake. */
  const awake = <T>(p: Promise<T>): Promise<T> =>
    p.then(
      async (v) => {
        await asleep?.woken
        return v
      },
      async (e: unknown) => {
        await asleep?.woken
        throw e
      },
    )
  const sleepyLocks: LockManager = {
    request: ((...args: Parameters<LockManager['request']>) => awake(tabLocks.request(...args))) as LockManager['request'],
    query: () => tabLocks.query(),
  }
  const user = options.user ?? 'ann'
  const client = new NotificationClient({
    url: s.wsUrl,
    token: () => s.token(typeof user === 'string' ? user : user()),
    WebSocket: TabSocket,
    backoff: FAST_BACKOFF,
    storage: options.storage ?? memoryStorage(),
    ackDelay: options.ackDelay,
    connection: sharedConnection({
      beat: options.beat ?? 50,
      stale: options.stale ?? 200,
      locks: options.locks === false ? undefined : sleepyLocks,
      BroadcastChannel: options.locks === false ? undefined : TabChannel,
    }),
  })
  const tab: Tab = {
    id,
    client,
    events: record(client),
    groups: [],
    crash() {
      dead = true
      locks.crash(id)
      for (const c of channels) c.onmessage = null
      for (const ws of sockets) ws.terminate()
    },
    freeze(f) {
      frozen = f
    },
    sleep() {
      frozen = true
      let wake = () => {}
      const woken = new Promise<void>((resolve) => {
        wake = resolve
      })
      asleep = { woken, wake }
      unheard = []
    },
    wake(lag) {
      asleep?.wake()
      asleep = undefined
      frozen = false
      setTimeout(() => {
        const messages = unheard ?? []
        unheard = undefined
        for (const [channel, data] of messages) channel.dispatchEvent(new MessageEvent('message', { data }))
      }, lag)
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
const publish = async (s: TestServer, from: number, to: number, user = 'ann') => {
  for (const i of range(from, to)) expect((await httpPublish(s.url, { userId: user, title: `n${i}`, body: '' })).status).toBe(201)
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const everyTabHas = (list: Tab[], seqs: number[]) =>
  vi.waitFor(() => {
    for (const t of list) expect(t.events.seqs(), t.id).toEqual(seqs)
  }, 15_000)

describe('sharedConnection', () => {
  it('gives three tabs of one user one server socket, and each tab every notification once, in order', async () => {
    const s = await start()
    const three = [openTab(s), openTab(s), openTab(s)]
    await Promise.all(three.map((t) => t.client.ready()))
    expect(s.server.stats().connections).toBe(1)
    expect(three.map(modeOf).sort()).toEqual(['follower', 'follower', 'leader'])
    // The client says its mode at any time, not only in its status events.
    expect(three.map((t) => t.client.mode)).toEqual(three.map(modeOf))
    await publish(s, 1, 30)
    await everyTabHas(three, range(1, 30))
    for (const t of three) expect(t.client.unreadCount).toBe(30)
    expect(s.server.stats().connections).toBe(1)
  })

  it('answers a follower’s requests through the leader, and tells every tab of a read change made in one', async () => {
    const s = await start()
    const [leader, a, b] = [openTab(s), openTab(s), openTab(s)]
    await Promise.all([leader, a, b].map((t) => t.client.ready()))
    await publish(s, 1, 5)
    await everyTabHas([leader, a, b], range(1, 5))
    const follower = [a, b].find((t) => modeOf(t) === 'follower')!
    const page = await follower.client.history({ limit: 3 })
    expect(page.items.map((n) => n.seq)).toEqual([5, 4, 3])
    // Only the asking tab got the page: no other tab saw a stray reply.
    const read = await follower.client.markAllRead()
    expect(read.unreadCount).toBe(0)
    await vi.waitFor(() => {
      for (const t of [leader, a, b]) {
        expect(t.client.unreadCount, t.id).toBe(0)
        expect(t.events.reads.at(-1)?.all, t.id).toBe(true)
      }
    })
    // The asking tab heard of its own change once (from its request), not again as news from elsewhere.
    expect(follower.events.reads).toHaveLength(1)
    expect(s.server.stats().connections).toBe(1)
  })

  it('loses and doubles nothing when the leader’s tab closes mid-stream: the next tab leads from its cursor', async () => {
    const s = await start()
    const three = [openTab(s), openTab(s), openTab(s)]
    await Promise.all(three.map((t) => t.client.ready()))
    const leader = three.find((t) => modeOf(t) === 'leader')!
    const rest = three.filter((t) => t !== leader)
    const publishing = publish(s, 1, 300)
    await vi.waitFor(() => expect(rest[0]!.events.seqs().length).toBeGreaterThanOrEqual(100), 15_000)
    leader.client.close()
    await publishing
    await everyTabHas(rest, range(1, 300))
    expect(rest.map(modeOf).sort()).toEqual(['follower', 'leader'])
    await vi.waitFor(() => expect(s.server.stats().connections).toBe(1))
  })

  it('loses and doubles nothing when the leader’s tab crashes (its lock released, its socket cut)', async () => {
    const s = await start()
    const three = [openTab(s), openTab(s), openTab(s)]
    await Promise.all(three.map((t) => t.client.ready()))
    const leader = three.find((t) => modeOf(t) === 'leader')!
    const rest = three.filter((t) => t !== leader)
    const publishing = publish(s, 1, 200)
    await vi.waitFor(() => expect(rest[0]!.events.seqs().length).toBeGreaterThanOrEqual(60), 15_000)
    leader.crash()
    await publishing
    await everyTabHas(rest, range(1, 200))
    await vi.waitFor(() => expect(s.server.stats().connections).toBe(1))
  })

  it('replaces a leader that stopped beating (a frozen tab): a tab takes the lock, the old leader steps down', async () => {
    const s = await start()
    const [first, second] = [openTab(s), openTab(s)]
    await Promise.all([first, second].map((t) => t.client.ready()))
    const leader = modeOf(first) === 'leader' ? first : second
    const follower = leader === first ? second : first
    await publish(s, 1, 10)
    await everyTabHas([first, second], range(1, 10))
    leader.freeze(true)
    await vi.waitFor(() => expect(modeOf(follower)).toBe('leader'), 5_000)
    // The old leader lost its lock: it closed its socket and follows.
    await vi.waitFor(() => expect(modeOf(leader)).toBe('follower'))
    expect([leader.client.mode, follower.client.mode]).toEqual(['follower', 'leader'])
    leader.freeze(false)
    await publish(s, 11, 20)
    await everyTabHas([first, second], range(1, 20))
    await vi.waitFor(() => expect(s.server.stats().connections).toBe(1))
  })

  it('a replaced leader that wakes to its lost lock before it hears the new leader follows, and does not take the lock back', async () => {
    const s = await start()
    const [first, second] = [openTab(s), openTab(s)]
    await Promise.all([first, second].map((t) => t.client.ready()))
    const leader = modeOf(first) === 'leader' ? first : second
    const follower = leader === first ? second : first
    await publish(s, 1, 5)
    await everyTabHas([first, second], range(1, 5))
    leader.sleep()
    await vi.waitFor(() => expect(modeOf(follower)).toBe('leader'), 5_000)
    const before = leader.events.statuses.length
    // Its overdue timers run before the new leader's messages reach it (3 beats later).
    leader.wake(150)
    await vi.waitFor(() => expect(modeOf(leader)).toBe('follower'))
    await publish(s, 6, 10)
    await everyTabHas([first, second], range(1, 10))
    await new Promise((resolve) => setTimeout(resolve, 400))
    expect(leader.events.statuses.slice(before).map((e) => e.mode)).not.toContain('leader')
    expect(modeOf(follower)).toBe('leader')
    expect(s.server.stats().connections).toBe(1)
  })

  it('a follower shown again after a freeze, whose overdue timer runs before it hears the leader, leaves the leader its lock', async () => {
    const s = await start()
    const doc = Object.assign(new EventTarget(), { hidden: false })
    vi.stubGlobal('document', doc)
    try {
      const leader = openTab(s)
      await leader.client.ready()
      const follower = openTab(s)
      await follower.client.ready()
      expect([leader, follower].map(modeOf)).toEqual(['leader', 'follower'])
      // Frozen in the background for a second, while the leader beats on...
      doc.hidden = true
      follower.sleep()
      await new Promise((resolve) => setTimeout(resolve, 1000))
      // ...then shown: the leader's words reach it 2 beats after its overdue timer runs.
      doc.hidden = false
      follower.wake(100)
      await new Promise((resolve) => setTimeout(resolve, 600))
      expect([leader, follower].map(modeOf)).toEqual(['leader', 'follower'])
      expect(leader.events.count('online')).toBe(1)
    } finally {
      vi.unstubAllGlobals()
    }
  })

  it('replaces a frozen leader within `stale` after the wall clock stepped back an hour (the silence is timed on the monotonic clock)', async () => {
    // belfry/shared's Date, running at real speed, which the test steps back (performance.now() stays real).
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now(), shouldAdvanceTime: true })
    const s = await start()
    const [first, second] = [openTab(s), openTab(s)]
    await Promise.all([first, second].map((t) => t.client.ready()))
    const leader = modeOf(first) === 'leader' ? first : second
    const follower = leader === first ? second : first
    await publish(s, 1, 3)
    await everyTabHas([follower], range(1, 3))

    // NTP steps the clock back an hour; a little later the leader's tab is frozen in the background.
    vi.setSystemTime(Date.now() - 3_600_000)
    await sleep(300)
    leader.freeze(true)

    // The visible follower takes over after 200 ms of silence (5 s allowed), not an hour, and gets what is published.
    await vi.waitFor(() => expect(modeOf(follower)).toBe('leader'), 5_000)
    await publish(s, 4, 5)
    await everyTabHas([follower], range(1, 5))
  })

  it('leaves a leader that beats on its lock when the wall clock steps forward a few seconds (no socket flap)', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now(), shouldAdvanceTime: true })
    const s = await start()
    // The leader beats every 500 ms. The follower watches every 200 ms, with stale 3 s: a silence between 3 s and
    // 3.4 s (stale + 2 of its beats) reads as a dead leader's, and it checks within 200 ms of any step.
    const leader = openTab(s, { beat: 500, stale: 3000 })
    await leader.client.ready()
    const follower = openTab(s, { beat: 200, stale: 3000 })
    await follower.client.ready()
    expect([modeOf(leader), modeOf(follower)]).toEqual(['leader', 'follower'])

    // NTP steps the clock forward 3.1 s, just after a beat reached the follower. The leader beats on.
    await new Promise<void>((resolve) =>
      follower.afterBeat(() => {
        vi.setSystemTime(Date.now() + 3100)
        resolve()
      }),
    )
    await sleep(1500)

    expect([modeOf(leader), modeOf(follower)]).toEqual(['leader', 'follower'])
    expect(leader.events.count('online')).toBe(1)
    expect(follower.events.statuses.map((e) => e.reason)).not.toContain('step down')
  })

  it('resumes a tab that leads after falling behind from its own cursor, not the profile’s (which other tabs moved on)', async () => {
    const s = await start()
    await publish(s, 1, 2)
    const profile = memoryStorage() // one profile's storage, as localStorage is
    profile.setItem('belfry:cursor:ann', '2')
    let losing = true
    const leader = openTab(s, { storage: profile })
    await leader.client.ready()
    // Hears nothing of the leader's (no notification, no history page) until told: it stays at 2.
    const behind = openTab(s, {
      storage: profile,
      lose: (m) => losing && !!m.e && !!m.f && ['notification', 'history'].includes(m.f.type),
    })
    // Ready, it has asked for the lock: before the next tab does.
    await behind.client.ready()
    const ahead = openTab(s, { storage: profile })
    await ahead.client.ready()
    await publish(s, 3, 10)
    await everyTabHas([leader, ahead], range(3, 10))
    expect(profile.getItem('belfry:cursor:ann')).toBe('10')
    expect(behind.events.seqs()).toEqual([])
    // The leader goes; the lagging tab was first in line for the lock.
    leader.client.close()
    await vi.waitFor(() => expect(modeOf(behind)).toBe('leader'))
    losing = false
    await publish(s, 11, 12)
    await everyTabHas([behind], range(3, 12))
    await everyTabHas([ahead], range(3, 12))
  })

  it('fills a gap for a tab that joins behind: the missing seqs come from history, marked replayed', async () => {
    const s = await start()
    const first = openTab(s)
    await first.client.ready()
    await publish(s, 1, 150)
    await everyTabHas([first], range(1, 150))
    // A tab whose stored cursor is 20 (it last ran long ago): 21–150 come as history pages through the leader.
    const behind = memoryStorage()
    behind.setItem('belfry:cursor:ann', '20')
    const late = openTab(s, { storage: behind })
    await late.client.ready()
    expect(modeOf(late)).toBe('follower')
    await everyTabHas([late], range(21, 150))
    expect(late.events.notifications.every((n) => n.replayed === true)).toBe(true)
    await publish(s, 151, 152)
    await everyTabHas([late], range(21, 152))
    expect(late.events.notifications.at(-1)!.replayed).toBeUndefined()
    expect(behind.getItem('belfry:cursor:ann')).toBe('152')
  })

  it('fills a gap for a tab that joins behind when the server cuts the history pages short by bytes', async () => {
    // A page stops before its items pass half of maxBufferedBytes, and says with `next` where the rest starts: about 7 of these a page.
    const s = await start({ limits: { maxBufferedBytes: 64 * 1024 } })
    const first = openTab(s)
    await first.client.ready()
    const body = 'x'.repeat(4000)
    for (const i of range(1, 30)) expect((await httpPublish(s.url, { userId: 'ann', title: `n${i}`, body })).status).toBe(201)
    await everyTabHas([first], range(1, 30))
    const behind = memoryStorage()
    behind.setItem('belfry:cursor:ann', '2')
    const late = openTab(s, { storage: behind })
    await late.client.ready()
    expect(modeOf(late)).toBe('follower')
    await everyTabHas([late], range(3, 30))
    expect(late.events.notifications.every((n) => n.replayed === true)).toBe(true)
  })

  it('fills a gap left by a lost message before handing over what came after it', async () => {
    const s = await start()
    const leader = openTab(s)
    await leader.client.ready()
    await publish(s, 1, 2)
    await everyTabHas([leader], [1, 2])
    const lossy = openTab(s, { lose: (m) => !!m.e && m.f?.type === 'notification' && (m.f.seq === 5 || m.f.seq === 6) })
    await lossy.client.ready()
    await publish(s, 3, 10)
    await everyTabHas([lossy], range(3, 10))
    expect(lossy.events.notifications.filter((n) => n.replayed).map((n) => n.seq)).toEqual([5, 6])
  })

  it('fetches the last notification relayed when a follower missed it, without waiting for another one (the beats say the leader’s latest seq)', async () => {
    const s = await start()
    const leader = openTab(s)
    await leader.client.ready()
    // The follower's channel loses the one message that relays seq 3 (as a frozen or busy tab may).
    let lost = 0
    const lossy = openTab(s, { lose: (m) => !!m.e && m.f?.type === 'notification' && m.f.seq === 3 && !lost++ })
    await lossy.client.ready()
    expect(modeOf(lossy)).toBe('follower')
    await publish(s, 1, 3)
    await everyTabHas([leader, lossy], [1, 2, 3])
    expect(lost).toBe(1)
    expect(lossy.events.notifications.filter((n) => n.replayed).map((n) => n.seq)).toEqual([3])
    expect(lossy.client.unreadCount).toBe(3)
  })

  it('puts right the unread count of a follower that missed a read change, from the leader’s beats', async () => {
    const s = await start()
    const leader = openTab(s)
    await leader.client.ready()
    // The follower's channel loses the one message that tells it of a read change made in another tab (as a paused tab may).
    let lost = 0
    const lossy = openTab(s, { lose: (m) => !!m.e && !m.to && m.f?.type === 'read' && !lost++ })
    const other = openTab(s)
    await Promise.all([lossy, other].map((t) => t.client.ready()))
    await publish(s, 1, 5)
    await everyTabHas([leader, lossy, other], range(1, 5))
    await other.client.markAllRead()
    await vi.waitFor(() => expect(lossy.client.unreadCount).toBe(0))
    expect(lost).toBe(1)
    // Told as a read change made elsewhere that names nothing; the tabs that missed nothing hear nothing more.
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(lossy.events.reads).toEqual([{ ids: [], all: false, seq: 5, unreadCount: 0 }])
    for (const t of [leader, other]) expect(t.events.reads, t.id).toHaveLength(1)
  })

  it('starts a tab without a cursor from what comes next, as the server does for since 0', async () => {
    const s = await start()
    const first = openTab(s)
    await first.client.ready()
    await publish(s, 1, 5)
    await everyTabHas([first], range(1, 5))
    const fresh = openTab(s)
    await fresh.client.ready()
    await publish(s, 6, 7)
    await everyTabHas([fresh], [6, 7])
  })

  it('acks by the clock with a volatile storage, as a socket of its own does: the next page load does not get it again', async () => {
    const s = await start()
    // memoryStorage() is volatile: the client acks `ackDelay` ms after a delivery, even to a server that acks by its heartbeat.
    const tab = openTab(s, { ackDelay: 50 })
    await tab.client.ready()
    expect(modeOf(tab)).toBe('leader')
    await publish(s, 1, 1)
    await everyTabHas([tab], [1])
    await new Promise((resolve) => setTimeout(resolve, 500))
    // The page reloads (no close(): an unload): the next one has no cursor and starts from the acknowledged seq.
    const next = new NotificationClient({
      url: s.wsUrl,
      token: () => s.token('ann'),
      WebSocket,
      backoff: FAST_BACKOFF,
      storage: memoryStorage(),
    })
    const got = record(next)
    await next.ready()
    await new Promise((resolve) => setTimeout(resolve, 300))
    next.close()
    expect(got.seqs()).toEqual([])
  })

  it('keeps users apart: each user’s tabs share a socket of their own', async () => {
    const s = await start()
    const ann = [openTab(s), openTab(s)]
    const bob = [openTab(s, { user: 'bob' }), openTab(s, { user: 'bob' })]
    await Promise.all([...ann, ...bob].map((t) => t.client.ready()))
    expect(s.server.stats().connections).toBe(2)
    await publish(s, 1, 3, 'bob')
    await everyTabHas(bob, [1, 2, 3])
    expect(ann.flatMap((t) => t.events.seqs())).toEqual([])
  })

  /** Three tabs of ann and one of bob, each tab's user as its token says, changeable. */
  async function annAndBob(s: TestServer) {
    const users = new Map<Tab, string>()
    const tab = (user: string) => {
      const t = openTab(s, { user: () => users.get(t)! })
      users.set(t, user)
      return t
    }
    const ann = [tab('ann'), tab('ann'), tab('ann')]
    await Promise.all(ann.map((t) => t.client.ready()))
    const bob = tab('bob')
    await bob.client.ready()
    expect(s.server.stats().connections).toBe(2)
    const leader = ann.find((t) => modeOf(t) === 'leader')!
    const followers = ann.filter((t) => t !== leader) as [Tab, Tab]
    return { ann, bob, leader, followers, signIn: (t: Tab, user: string) => users.set(t, user) }
  }

  it('moves the leader’s tab to another user’s group when its token names that user at its next connect', async () => {
    const s = await start()
    const { ann, bob, leader, followers, signIn } = await annAndBob(s)
    signIn(leader, 'bob')
    await s.restart()
    await vi.waitFor(() => expect(leader.groups.at(-1)).toMatch(/#bob$/))
    await Promise.all([...ann, bob].map((t) => t.client.ready()))
    await vi.waitFor(() => expect(s.server.stats().connections).toBe(2), 10_000)
    await publish(s, 1, 3, 'ann')
    await publish(s, 1, 2, 'bob')
    await everyTabHas(followers, [1, 2, 3])
    await everyTabHas([leader, bob], [1, 2])
    expect(followers.map(modeOf).sort()).toEqual(['follower', 'leader'])
  })

  it('moves a follower’s tab to another user’s group when its token names that user once the leader reconnects', async () => {
    const s = await start()
    const { bob, leader, followers, signIn } = await annAndBob(s)
    const [moves, stays] = followers
    signIn(moves, 'bob')
    await s.restart()
    await Promise.all([leader, stays, bob].map((t) => t.client.ready()))
    await vi.waitFor(() => expect(moves.groups.at(-1)).toMatch(/#bob$/))
    await moves.client.ready()
    await publish(s, 1, 3, 'ann')
    await publish(s, 1, 2, 'bob')
    await everyTabHas([leader, stays], [1, 2, 3])
    await everyTabHas([moves, bob], [1, 2])
    expect(modeOf(leader)).toBe('leader')
    expect(s.server.stats().connections).toBe(2)
  })

  // Regression: join() reset the group's epoch, held notifications and cursor but not the snapshot of the leader's last
  // auth_success. A tab that moved from ann's group to bob's and led it announced ann's until its socket was online for
  // bob, and a bob tab that joined meanwhile raised its cursor to ann's retention floor: bob's seqs below it were lost.
  it('hands a tab that joins a leader just moved to another user’s group none of the old user’s snapshot: it gets all it lacks', async () => {
    const s = await start()
    // ann's inbox was pruned: her floor is 7 (seqs 8..10 kept).
    await publish(s, 1, 10, 'ann')
    await prune(s, { maxPerUser: 3 })
    // bob was away: 12 notifications, of which this browser profile saw up to 2.
    await publish(s, 1, 12, 'bob')
    const profile = memoryStorage() // one profile's storage, as localStorage is
    profile.setItem('belfry:cursor:bob', '2')
    // Tab A: ann signed in, leading her group.
    let userA = 'ann'
    const a = openTab(s, { user: () => userA, storage: profile })
    await a.client.ready()
    expect(a.client.mode).toBe('leader')
    // The connection drops (a deploy); meanwhile ann signs out and bob signs in in tab A.
    await s.stop()
    userA = 'bob'
    await vi.waitFor(() => expect(a.groups.at(-1)).toMatch(/#bob$/))
    await vi.waitFor(() => expect(a.client.mode).toBe('leader'))
    // Another tab of bob's opens while tab A's socket for bob is not online yet, and hears tab A's state.
    const b = openTab(s, { user: 'bob', storage: profile })
    await vi.waitFor(() => expect(b.events.statuses.some((e) => e.to === 'reconnecting')).toBe(true))
    await s.restart()
    await Promise.all([a.client.ready(), b.client.ready()])
    expect(b.client.mode).toBe('follower')
    // Both resume bob from the profile's cursor (2): seqs 3..12, once, in order (tab A after ann's 8..10).
    await vi.waitFor(() => expect(a.events.seqs().slice(-10)).toEqual(range(3, 12)), 10_000)
    await vi.waitFor(() => expect(b.events.seqs()).toEqual(range(3, 12)), 5_000)
  })

  it('answers a refused topic to the tab that asked for it alone', async () => {
    const s = await start({ limits: { maxTopicLength: 8 } })
    const [a, b] = [openTab(s), openTab(s)]
    await Promise.all([a, b].map((t) => t.client.ready()))
    const follower = modeOf(a) === 'follower' ? a : b
    const other = follower === a ? b : a
    follower.client.subscribe('much-too-long')
    await vi.waitFor(() =>
      expect(follower.events.errors.map((e) => e.message)).toContain('subscription to "much-too-long" refused: topic_too_long'),
    )
    expect(other.events.errors).toEqual([])
  })

  it('falls back to a socket per tab without Web Locks or BroadcastChannel (mode solo)', async () => {
    const s = await start()
    const two = [openTab(s, { locks: false }), openTab(s, { locks: false })]
    await Promise.all(two.map((t) => t.client.ready()))
    expect(two.map(modeOf)).toEqual(['solo', 'solo'])
    expect(s.server.stats().connections).toBe(2)
  })

  it.each(['leader', 'follower'] as const)(
    'keeps the status chain when a %s tab is closed from an unread handler as it goes online',
    async (mode) => {
      const s = await start()
      await publish(s, 1, 1)
      if (mode === 'follower') await openTab(s).client.ready()
      const tab = openTab(s)
      tab.client.on('unread', () => tab.client.close())
      await vi.waitFor(() => expect(tab.client.state).toBe('closed'))
      const hops = tab.events.statuses.map((e) => [e.from, e.to])
      expect(hops.at(-1)![1]).toBe('closed')
      for (let i = 1; i < hops.length; i++) expect(hops[i]![0], JSON.stringify(hops)).toBe(hops[i - 1]![1])
    },
  )

  // Regression: follow() steps down, tells `reconnecting`, then queued for the lock again without looking at the state:
  // a status handler that closed the tab there leaves a closed tab in the lock queue, which leads when its turn comes.
  it('a leader closed from its status handler as it steps down never takes the lock again nor opens a socket', async () => {
    const s = await start()
    const [first, second] = [openTab(s), openTab(s)]
    await Promise.all([first, second].map((t) => t.client.ready()))
    const leader = modeOf(first) === 'leader' ? first : second
    const follower = leader === first ? second : first
    leader.client.on('status', (e) => {
      if (e.reason === 'step down') leader.client.close()
    })
    leader.freeze(true)
    await vi.waitFor(() => expect(leader.client.state).toBe('closed'), 5_000)
    await vi.waitFor(() => expect(modeOf(follower)).toBe('leader'), 5_000)
    // The tab that leads now closes: the lock is free, and no open tab is left.
    follower.client.close()
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(s.server.stats().connections).toBe(0)
    expect(leader.client.mode).toBe('follower')
  })

  it('retries a tab alone whose token provider fails as a socket of its own would: later each time, not in a loop', async () => {
    const s = await start()
    let calls = 0
    let broken = true
    // The first call (the tab joins its group) works; the socket's fail till the provider is mended.
    const alone = openTab(s, {
      user: () => {
        if (++calls > 1 && broken) throw new Error('signed out')
        return 'ann'
      },
    })
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    // FAST_BACKOFF: at most 50 ms, then 100, 200, 300 ms: about a dozen calls in 1.5 s (at 50 ms every time, 60).
    expect(calls).toBeLessThan(30)
    const retries = alone.events.statuses.filter((e) => e.reason === 'token or url failed')
    expect(retries.length).toBeGreaterThan(3)
    expect(Math.max(...retries.map((e) => e.retryIn!))).toBeGreaterThan(50)
    broken = false
    await alone.client.ready({ timeout: 5_000 })
    expect(modeOf(alone)).toBe('leader')
  })

  it('hands a follower nothing more once its notification handler closes it mid-batch: the stored cursor stays at what the app got', async () => {
    const s = await start()
    const leader = openTab(s)
    await leader.client.ready()
    await publish(s, 1, 6)
    await everyTabHas([leader], range(1, 6))
    // A tab that last saw seq 1 joins: it fills 2–6 from one history page, in order.
    const stored = memoryStorage()
    stored.setItem('belfry:cursor:ann', '1')
    const follower = openTab(s, { storage: stored })
    // The app closes the client once it has been handed seq 3 (a sign-out, a page leaving).
    follower.client.on('notification', (n) => {
      if (n.seq === 3) follower.client.close()
    })
    await vi.waitFor(() => expect(follower.client.state).toBe('closed'), 5000)
    await new Promise((r) => setTimeout(r, 200))
    expect(follower.events.seqs()).toEqual([2, 3])
    // The next page load resumes after 3: 4, 5 and 6 were never handed to the app.
    expect(stored.getItem('belfry:cursor:ann')).toBe('3')
  })

  it('refuses a bad option with a TypeError that says what it got', () => {
    expect(() => sharedConnection({ beat: 0 })).toThrow(
      new TypeError('sharedConnection: beat must be a number of ms from 1 to 2^31-1; got 0'),
    )
    expect(() => sharedConnection({ stale: Number.NaN })).toThrow(/stale must be a number of ms from 1 to 2\^31-1; got NaN/)
    // Not a number, though `true > 0` and `'5' > 0` hold: no 1 ms beat.
    expect(() => sharedConnection({ beat: true as never })).toThrow(/beat must be a number of ms from 1 to 2\^31-1; got true/)
    expect(() => sharedConnection({ stale: '5000' as never })).toThrow(/stale must be a number of ms from 1 to 2\^31-1; got 5000/)
  })

  // null met JavaScript's own TypeError ("Cannot destructure property 'beat' of … null"), which says nothing of what is
  // expected, and a string was taken for no options.
  it('refuses options that are not an object (null, a string) with a TypeError that says what it got', () => {
    expect(() => sharedConnection(null as never)).toThrow(new TypeError('sharedConnection: options must be an object; got null'))
    expect(() => sharedConnection('fast' as never)).toThrow(new TypeError('sharedConnection: options must be an object; got fast'))
    expect(() => sharedConnection(undefined)).not.toThrow()
  })

  // Past setTimeout's range a delay overflows to 1 ms (Node; 0 in browsers): the leader's setInterval(…, beat) would
  // post its state on the BroadcastChannel every millisecond, and wake every tab to it (beat: Number.MAX_SAFE_INTEGER
  // for "as rarely as possible"). The client's delays and belfry/desktop's interval are held to the same range.
  it.each([
    ['beat', 2 ** 31],
    ['beat', Number.MAX_SAFE_INTEGER],
    ['stale', 2 ** 31],
  ])('refuses a %s past setTimeout range (%d ms) with a TypeError that says what it got', (name, value) => {
    expect(() => sharedConnection({ [name]: value })).toThrow(
      new TypeError(`sharedConnection: ${name} must be a number of ms from 1 to 2^31-1; got ${value}`),
    )
    expect(() => sharedConnection({ [name]: 2 ** 31 - 1 })).not.toThrow()
  })
})

describe('sharedConnection and retention', () => {
  it('passes the floor to every tab: a follower whose cursor is below it says expired, one without a cursor does not', async () => {
    const s = await start({ retention: { maxPerUser: 3 } })
    await publish(s, 1, 6)
    expect(await prune(s)).toMatchObject({ removed: 3 })
    const leader = openTab(s)
    await leader.client.ready()
    const storage = memoryStorage()
    storage.setItem('belfry:cursor:ann', '1')
    const behind = openTab(s, { storage })
    await behind.client.ready()
    expect(modeOf(behind)).toBe('follower')
    expect(behind.events.statuses.find((e) => e.to === 'online')).toMatchObject({ mode: 'follower', expired: true })
    expect(leader.events.statuses.find((e) => e.to === 'online')).not.toHaveProperty('expired')
    await everyTabHas([behind], [4, 5, 6])
  })
})

describe('sharedConnection and a server that starts over on another database', () => {
  it('a follower takes the new numbering from the leader: it gets the new database’s next notification, and none of its older ones', async () => {
    // The old server: the tabs get five notifications, so their cursors are 5.
    const old = await start()
    const leader = openTab(old)
    await leader.client.ready()
    const follower = openTab(old)
    await follower.client.ready()
    expect([modeOf(leader), modeOf(follower)]).toEqual(['leader', 'follower'])
    await publish(old, 1, 5)
    await everyTabHas([leader, follower], range(1, 5))

    // Another database, which already holds two notifications of ann's (seqs 1 and 2).
    const other = await startServer()
    onTestFinished(() => other.dispose())
    await publish(other, 1, 2)
    await other.stop()

    // The server at the tabs' URL starts over on that database.
    await old.stop()
    const restarted = new NotificationServer({
      secret: SECRET,
      apiKey: API_KEY,
      database: other.database,
      logger: pino({ level: 'silent' }),
    })
    onTestFinished(() => restarted.close())
    await restarted.listen(old.port, '127.0.0.1')
    await vi.waitFor(() => expect(follower.client.state).toBe('online'), 10_000)
    await new Promise((r) => setTimeout(r, 300)) // the follower's gap fill, if any, is over

    // Seq 3 on the new database: past the server's latest at auth (2), so both tabs hand it to the app (and only it).
    await publish(old, 3, 3)
    await everyTabHas([leader], [1, 2, 3, 4, 5, 3])
    await new Promise((r) => setTimeout(r, 300))
    expect(follower.events.seqs()).toEqual([1, 2, 3, 4, 5, 3])
  })
})
