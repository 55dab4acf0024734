import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type DesktopOptions, desktopNotifications } from '../../src/desktop/index.js'
import type { ConnectionMode, Notification, NotificationClient, ReadEvent, StatusEvent } from '../../src/index.js'
import { sharedConnection } from '../../src/shared/index.js'
import { FakeChannel, FakeLocks, tabConnection } from '../helpers/locks.js'
import { cleanup, createClient, note as frame, jwt, startMockServer, tick } from '../helpers/mock-server.js'

/** A client that emits what a test tells it to. */
function fakeClient() {
  const handlers = {
    notification: new Set<(n: Notification) => void>(),
    status: new Set<(e: StatusEvent) => void>(),
    read: new Set<(e: ReadEvent) => void>(),
  }
  const client = {
    mode: 'solo' as ConnectionMode,
    on(type: keyof typeof handlers, handler: (e: never) => void) {
      const set = handlers[type] as Set<(e: never) => void>
      set.add(handler)
      return () => set.delete(handler)
    },
  }
  return {
    client: client as unknown as NotificationClient,
    notify: (n: Notification) => {
      for (const h of handlers.notification) h(n)
    },
    read: (e: Omit<ReadEvent, 'unreadCount'>) => {
      for (const h of handlers.read) h({ unreadCount: 0, ...e })
    },
    mode: (mode: ConnectionMode) => {
      client.mode = mode
      for (const h of handlers.status) h({ from: 'authenticating', to: 'online', mode, reason: 'auth', attempt: 0 })
    },
    /** The app closes the client (its user signed out): its status goes to `closed`. */
    close: () => {
      for (const h of handlers.status) h({ from: 'online', to: 'closed', mode: client.mode, reason: 'close', attempt: 0 })
    },
    listeners: () => handlers.notification.size + handlers.status.size + handlers.read.size,
  }
}

const note = (seq: number, extra: Partial<Notification> = {}): Notification => ({
  id: `id-${seq}`,
  seq,
  title: `n${seq}`,
  body: `body ${seq}`,
  priority: 'medium',
  timestamp: '2026-12-01T00:00:00.000Z',
  read: false,
  ...extra,
})

/** A Notification constructor that records what it is asked to show. */
function fakeNotification(permission: NotificationPermission = 'granted') {
  const shown: { title: string; options: NotificationOptions; closed: boolean; onclick: (() => void) | null }[] = []
  class Fake {
    static permission = permission
    static requests = 0
    static async requestPermission() {
      Fake.requests++
      Fake.permission = 'granted'
      return Fake.permission
    }
    onclick: (() => void) | null = null
    readonly entry: (typeof shown)[number]
    constructor(title: string, options: NotificationOptions = {}) {
      this.entry = { title, options, closed: false, onclick: null }
      shown.push(this.entry)
      queueMicrotask(() => {
        this.entry.onclick = this.onclick
      })
    }
    close() {
      this.entry.closed = true
    }
  }
  return { Ctor: Fake as unknown as typeof Notification & typeof Fake, shown }
}

let visible = false
const settle = () => vi.advanceTimersByTimeAsync(0)
/** The window's events (`pagehide`): one window for every instance of a test. */
let win: EventTarget

function setup(options: DesktopOptions = {}, permission: NotificationPermission = 'granted') {
  const c = fakeClient()
  const n = fakeNotification(permission)
  const desktop = desktopNotifications(c.client, { Notification: n.Ctor, anyTabVisible: () => visible, ...options })
  return { ...c, ...n, desktop }
}

/**
 * Web Locks as a browser profile has them for belfry/desktop's visible-tab lock (shared mode,
 * granted a task later), with `query()` listing what is held; and a document whose
 * visibility a test sets.
 */
function fakeLocks() {
  const held: { name: string; mode: LockMode }[] = []
  const manager = {
    request(name: string, options: LockOptions, callback: LockGrantedCallback<unknown>) {
      const lock = { name, mode: options.mode ?? 'exclusive' }
      return new Promise((resolve) => setTimeout(resolve, 0)).then(async () => {
        held.push(lock)
        try {
          return await callback(lock as Lock)
        } finally {
          held.splice(held.indexOf(lock), 1)
        }
      })
    },
    async query() {
      return { held: held.map((l) => ({ ...l })), pending: [] }
    },
  }
  vi.stubGlobal('navigator', { locks: manager })
  const doc = Object.assign(new EventTarget(), { visibilityState: 'visible' as DocumentVisibilityState })
  vi.stubGlobal('document', doc)
  const show = (v: DocumentVisibilityState) => {
    doc.visibilityState = v
    doc.dispatchEvent(new Event('visibilitychange'))
  }
  return { held: () => held.map((l) => l.name), show }
}

beforeEach(() => {
  vi.useFakeTimers()
  visible = false
  FakeChannel.reset()
  vi.stubGlobal('BroadcastChannel', FakeChannel)
  win = new EventTarget()
  vi.stubGlobal('addEventListener', win.addEventListener.bind(win))
  vi.stubGlobal('removeEventListener', win.removeEventListener.bind(win))
})
// Real timers and globals back, and the mock server's clients closed.
afterEach(cleanup)

describe('desktopNotifications', () => {
  it('shows a live notification while no tab is visible, tagged with its id', async () => {
    const t = setup()
    t.notify(note(1))
    await settle()
    expect(t.shown.map((s) => [s.title, s.options.body, s.options.tag])).toEqual([['n1', 'body 1', 'id-1']])
    expect(t.shown[0]!.options.data).toEqual({ id: 'id-1', seq: 1 })
  })

  it('shows nothing while a tab is visible, or without the permission', async () => {
    visible = true
    const t = setup()
    t.notify(note(1))
    await settle()
    expect(t.shown).toEqual([])
    visible = false
    for (const permission of ['default', 'denied'] as const) {
      const u = setup({}, permission)
      u.notify(note(1))
      await settle()
      expect(u.shown, permission).toEqual([])
    }
  })

  it('leaves showing to the leader when tabs share a connection: a follower shows nothing', async () => {
    const t = setup()
    t.mode('follower')
    t.notify(note(1))
    await settle()
    expect(t.shown).toEqual([])
    t.mode('leader')
    t.notify(note(2))
    await settle()
    expect(t.shown.map((s) => s.title)).toEqual(['n2'])
  })

  // Regression: the mode was learnt from status events only; started in a tab that was already a follower
  // (its client online before), it showed as if solo, beside the leader, until the next status event.
  it('leaves showing to the leader when started in a tab that already follows', async () => {
    const c = fakeClient()
    ;(c.client as { mode: ConnectionMode }).mode = 'follower'
    const n = fakeNotification()
    desktopNotifications(c.client, { Notification: n.Ctor, anyTabVisible: () => visible })
    c.notify(note(1))
    await settle()
    expect(n.shown).toEqual([])
  })

  it('shows at most one per interval: a burst of 20 is one notification and one summary of the other 19', async () => {
    const t = setup()
    for (let i = 1; i <= 20; i++) t.notify(note(i))
    await settle()
    expect(t.shown.map((s) => s.title)).toEqual(['n1'])
    await vi.advanceTimersByTimeAsync(1999)
    expect(t.shown).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(t.shown.map((s) => [s.title, s.options.tag])).toEqual([
      ['n1', 'id-1'],
      ['19 new notifications', 'belfry:summary'],
    ])
    // The next burst: its summary replaces the last one (the same tag), telling its 19 too, again at most one per interval.
    for (let i = 21; i <= 25; i++) t.notify(note(i))
    await vi.advanceTimersByTimeAsync(2000)
    expect(t.shown.slice(2).map((s) => [s.title, s.options.tag])).toEqual([['24 new notifications', 'belfry:summary']])
    // Quiet for an interval: the next one is shown alone again.
    await vi.advanceTimersByTimeAsync(2000)
    t.notify(note(26))
    await settle()
    expect(t.shown.at(-1)!.title).toBe('n26')
  })

  it('counts in a summary those of the summary it replaces, still unseen: 5 more after "19 new notifications" make "24", not "5"', async () => {
    const t = setup()
    for (let i = 1; i <= 20; i++) t.notify(note(i))
    await vi.advanceTimersByTimeAsync(2000)
    expect(t.shown.map((s) => s.title)).toEqual(['n1', '19 new notifications'])
    for (let i = 21; i <= 25; i++) t.notify(note(i))
    await vi.advanceTimersByTimeAsync(2000)
    expect(t.shown.at(-1)!.title).toBe('24 new notifications')
    // Read meanwhile, of those told or waiting: not news.
    for (let i = 26; i <= 28; i++) t.notify(note(i))
    await settle()
    t.read({ ids: ['id-2', 'id-21', 'id-26'], all: false, seq: 28 })
    await vi.advanceTimersByTimeAsync(2000)
    expect(t.shown.at(-1)!.title).toBe('24 new notifications')
    t.read({ ids: [], all: true, seq: 20 })
    for (let i = 29; i <= 30; i++) t.notify(note(i))
    await vi.advanceTimersByTimeAsync(2000)
    expect(t.shown.at(-1)!.title).toBe('8 new notifications')
    // The summary clicked (its tab comes forward): the next tells only what came after.
    t.shown.at(-1)!.onclick!()
    for (let i = 31; i <= 33; i++) t.notify(note(i))
    await vi.advanceTimersByTimeAsync(2000)
    expect(t.shown.at(-1)!.title).toBe('3 new notifications')
    // One due while a tab is visible is dropped with all it would tell: the user sees the app.
    for (let i = 34; i <= 35; i++) t.notify(note(i))
    await settle()
    visible = true
    await vi.advanceTimersByTimeAsync(2000)
    visible = false
    await vi.advanceTimersByTimeAsync(2000)
    t.notify(note(36))
    t.notify(note(37))
    await vi.advanceTimersByTimeAsync(2000)
    expect(t.shown.slice(-2).map((s) => s.title)).toEqual(['n36', '1 new notification'])
  })

  it('hands what waits for its summary to the tab that leads next when the leader goes away (pagehide) before it is due', async () => {
    const leader = setup()
    leader.mode('leader')
    const follower = setup()
    follower.mode('follower')
    for (const tab of [leader, follower]) for (let i = 1; i <= 3; i++) tab.notify(note(i))
    await settle()
    expect(leader.shown.map((s) => s.title)).toEqual(['n1'])
    // The leader's tab is closed within the interval (one window here: each tab hears its pagehide); it runs no more.
    win.dispatchEvent(new Event('pagehide'))
    leader.desktop.stop()
    follower.mode('leader')
    await vi.advanceTimersByTimeAsync(2000)
    expect(follower.shown.map((s) => [s.title, s.options.tag])).toEqual([['2 new notifications', 'belfry:summary']])
    // A leader whose summary is up (none pending) hands what it told, marked: the next shows no summary for it
    // alone, but counts it in its next, which replaces the one on the desktop.
    const next = setup()
    next.mode('follower')
    win.dispatchEvent(new Event('pagehide'))
    follower.desktop.stop()
    next.mode('leader')
    await vi.advanceTimersByTimeAsync(5000)
    expect(next.shown).toEqual([])
    next.notify(note(4))
    next.notify(note(5))
    await vi.advanceTimersByTimeAsync(2000)
    expect(next.shown.map((s) => s.title)).toEqual(['n4', '3 new notifications'])
  })

  // belfry/shared's leader steps down when its token provider fails as its socket reconnects (it hands the lock to a
  // tab whose provider works), its tab still open: no pagehide. As a follower its summary timer dropped what waited,
  // and the next leader had dropped it too (a follower drops what it counts on each notification).
  it('hands what waits for its summary to the tab that leads next when the leader steps down (its token provider failed)', async () => {
    let latest = 0
    const server = startMockServer({ auth: (peer) => peer.authSuccess({ seq: latest }) })
    const locks = new FakeLocks()
    let failing = false
    const a = createClient(server, {
      token: () => {
        if (failing) throw new Error('token endpoint down')
        return jwt('u1')
      },
      connection: tabConnection(locks, 'a'),
    })
    a.client.on('error', () => {})
    a.client.connect()
    await tick(100)
    const b = createClient(server, { token: () => jwt('u1'), connection: tabConnection(locks, 'b') })
    b.client.connect()
    await tick(200)
    expect([a.client.mode, b.client.mode]).toEqual(['leader', 'follower'])
    // Both tabs hidden, each with its desktop notifications.
    const [shownA, shownB] = [fakeNotification(), fakeNotification()]
    desktopNotifications(a.client, { Notification: shownA.Ctor, anyTabVisible: () => visible })
    desktopNotifications(b.client, { Notification: shownB.Ctor, anyTabVisible: () => visible })
    // A burst of 3: the first is shown, the other two wait for the summary, due an interval (2 s) later.
    for (const i of [1, 2, 3]) server.peer.send(frame(i))
    latest = 3
    await tick(100)
    expect(shownA.shown.map((s) => s.title)).toEqual(['title 1'])
    // Before it is due, the leader's socket drops and its token provider fails: tab a steps down, tab b leads.
    failing = true
    server.peer.close(1012)
    await tick(1000)
    expect([a.client.mode, b.client.mode, b.client.state]).toEqual(['follower', 'leader', 'online'])
    await tick(10_000)
    expect([...shownA.shown, ...shownB.shown].map((s) => s.title)).toEqual(['title 1', '2 new notifications'])
  })

  // Alone, the tab that stepped down is the only one that has them: it shows the summary when due, still a follower
  // till its retry leads again (its status told no other leader); the retry's lead adds none.
  it('shows the summary of a leader that stepped down with no other tab to lead, when due', async () => {
    let latest = 0
    const server = startMockServer({ auth: (peer) => peer.authSuccess({ seq: latest }) })
    let failing = false
    const a = createClient(server, {
      token: () => {
        if (failing) throw new Error('token endpoint down')
        return jwt('u1')
      },
      connection: tabConnection(new FakeLocks(), 'a'),
    })
    a.client.on('error', () => {})
    a.client.connect()
    await tick(100)
    const n = fakeNotification()
    desktopNotifications(a.client, { Notification: n.Ctor, anyTabVisible: () => visible })
    for (const i of [1, 2, 3]) server.peer.send(frame(i))
    latest = 3
    await tick(100)
    failing = true
    server.peer.close(1012)
    await tick(1000)
    // Stepped down, its retry due after the summary.
    expect([a.client.mode, n.shown.length]).toEqual(['follower', 1])
    await tick(1200)
    expect([a.client.mode, n.shown.map((s) => s.title)]).toEqual(['follower', ['title 1', '2 new notifications']])
    failing = false
    await tick(10_000)
    expect([a.client.mode, a.client.state]).toEqual(['leader', 'online'])
    expect(n.shown.map((s) => s.title)).toEqual(['title 1', '2 new notifications'])
  })

  // belfry/shared's tab tells its client a state only when it changes: one that takes over from a leader whose page
  // vanished as its socket was connecting is connecting too, and tells nothing (so no mode of leader) till its own socket
  // opens, while the summary handed to it comes due.
  it('shows the summary handed on by a leader whose page vanished while its socket connected, due before the next socket opens', async () => {
    let latest = 0
    const server = startMockServer({ auth: (peer) => peer.authSuccess({ seq: latest }) })
    const locks = new FakeLocks()
    // Once slow, a token takes 5 s: each socket connects that long.
    let slow = false
    const token = () => (slow ? new Promise<string>((r) => setTimeout(r, 5000, jwt('u1'))) : jwt('u1'))
    const a = createClient(server, { token, connection: tabConnection(locks, 'a') })
    a.client.connect()
    await tick(100)
    const b = createClient(server, { token, connection: tabConnection(locks, 'b') })
    b.client.connect()
    await tick(200)
    const [shownA, shownB] = [fakeNotification(), fakeNotification()]
    const desktopA = desktopNotifications(a.client, { Notification: shownA.Ctor, anyTabVisible: () => visible })
    desktopNotifications(b.client, { Notification: shownB.Ctor, anyTabVisible: () => visible })
    for (const i of [1, 2, 3]) server.peer.send(frame(i))
    latest = 3
    await tick(100)
    expect(shownA.shown.map((s) => s.title)).toEqual(['title 1'])
    // The leader's socket drops, and its retry is connecting when its page goes: tab b leads, connecting still.
    slow = true
    server.peer.close(1012)
    await tick(500)
    expect([a.client.state, b.client.state]).toEqual(['connecting', 'connecting'])
    win.dispatchEvent(new Event('pagehide'))
    desktopA.stop()
    locks.crash('a')
    await tick(100)
    expect([b.client.mode, b.client.state]).toEqual(['leader', 'connecting'])
    // The summary is due before b's socket opens.
    await tick(2500)
    expect(b.client.state).toBe('connecting')
    expect(shownB.shown.map((s) => s.title)).toEqual(['2 new notifications'])
    // Its socket online, it leads as before: nothing more to show.
    await tick(5000)
    expect([b.client.mode, b.client.state, shownB.shown.length]).toEqual(['leader', 'online', 1])
  })

  it("starts the count over in each of the user's tabs when a summary is clicked, with a socket per tab (each counts its own)", async () => {
    const [x, y] = [setup(), setup()]
    for (const tab of [x, y]) for (let i = 1; i <= 3; i++) tab.notify(note(i))
    await vi.advanceTimersByTimeAsync(2000)
    for (const tab of [x, y]) expect(tab.shown.map((s) => s.title)).toEqual(['n1', '2 new notifications'])
    // The user clicks X's summary (the one the desktop kept): Y's next summary must not tell n2 and n3 again.
    x.shown[1]!.onclick!()
    await vi.advanceTimersByTimeAsync(2000)
    for (const tab of [x, y]) for (const i of [4, 5]) tab.notify(note(i))
    await vi.advanceTimersByTimeAsync(2000)
    for (const tab of [x, y]) expect(tab.shown.slice(2).map((s) => s.title)).toEqual(['n4', '1 new notification'])
  })

  it("takes from its channel only lists of notifications (any script of the origin may post there), and an earlier version's hand-off", async () => {
    const t = setup()
    const other = new FakeChannel('belfry:visible#')
    // Another shape throws nothing (in every tab of the user's); what is no notification counts in no summary.
    other.postMessage({ told: [], pending: [] })
    other.postMessage(['hello', 42, null, { id: 7, seq: 1 }, { id: 'id-1' }])
    await vi.advanceTimersByTimeAsync(5000)
    expect(t.shown).toEqual([])
    // A tab of the earlier deploy hands on a plain list of notifications: they wait for a summary.
    other.postMessage([note(1), note(2)])
    await vi.advanceTimersByTimeAsync(2000)
    expect(t.shown.map((s) => s.title)).toEqual(['2 new notifications'])
  })

  it('never shows catch-up notifications one by one: 50 replayed are one summary', async () => {
    const t = setup()
    for (let i = 1; i <= 50; i++) t.notify(note(i, { replayed: true }))
    await vi.advanceTimersByTimeAsync(5000)
    expect(t.shown.map((s) => s.title)).toEqual(['50 new notifications'])
  })

  it('never tells one that is read already (read elsewhere before this catch-up), alone or in a summary', async () => {
    const t = setup()
    t.notify(note(1, { read: true }))
    await settle()
    expect(t.shown).toEqual([])
    for (let i = 2; i <= 5; i++) t.notify(note(i, { replayed: true, read: i !== 5 }))
    await vi.advanceTimersByTimeAsync(2000)
    expect(t.shown.map((s) => s.title)).toEqual(['1 new notification'])
  })

  it('leaves out of a summary those that became read while they waited', async () => {
    const t = setup()
    for (let i = 1; i <= 6; i++) t.notify(note(i, { replayed: true }))
    await settle()
    t.read({ ids: ['id-2', 'id-9'], all: false, seq: 7 })
    t.read({ ids: [], all: true, seq: 4 })
    await vi.advanceTimersByTimeAsync(2000)
    expect(t.shown.map((s) => s.title)).toEqual(['2 new notifications'])
    // All of a burst read: no summary at all.
    for (let i = 7; i <= 9; i++) t.notify(note(i, { replayed: true }))
    await settle()
    t.read({ ids: [], all: true, seq: 9 })
    await vi.advanceTimersByTimeAsync(5000)
    expect(t.shown).toHaveLength(1)
  })

  it('starts the count over when one comes while a tab is visible: the user sees the app', async () => {
    const t = setup()
    for (let i = 1; i <= 20; i++) t.notify(note(i))
    await vi.advanceTimersByTimeAsync(2000)
    visible = true
    t.notify(note(21))
    await vi.advanceTimersByTimeAsync(2000)
    visible = false
    for (let i = 22; i <= 24; i++) t.notify(note(i))
    await vi.advanceTimersByTimeAsync(2000)
    expect(t.shown.map((s) => s.title)).toEqual(['n1', '19 new notifications', 'n22', '2 new notifications'])
  })

  it('drops a summary that comes due while a tab is visible', async () => {
    const t = setup()
    t.notify(note(1))
    t.notify(note(2))
    await settle()
    visible = true
    await vi.advanceTimersByTimeAsync(2000)
    expect(t.shown.map((s) => s.title)).toEqual(['n1'])
  })

  it('uses filter, render and summary', async () => {
    const t = setup({
      filter: (n) => n.priority === 'high',
      render: (n) => ({ title: `!${n.title}`, options: { body: 'custom', icon: '/i.png' } }),
      summary: (count) => ({ title: `${count} more` }),
    })
    t.notify(note(1))
    t.notify(note(2, { priority: 'high' }))
    t.notify(note(3, { priority: 'high' }))
    await vi.advanceTimersByTimeAsync(2000)
    expect(t.shown.map((s) => [s.title, s.options.body, s.options.icon])).toEqual([
      ['!n2', 'custom', '/i.png'],
      ['1 more', undefined, undefined],
    ])
  })

  it('tells a callback that throws on its error event (or the console without a handler), never as an unhandled rejection, and goes on', async () => {
    const escaped: unknown[] = []
    const onRejection = (reason: unknown) => escaped.push(reason)
    process.on('unhandledRejection', onRejection)
    try {
      const fails = (what: string) => () => {
        throw new Error(what)
      }
      const failing = true
      const t = setup({
        filter: (n) => (n.seq === 1 ? fails('bad filter')() : true),
        render: (n) => (n.seq === 2 ? fails('bad render')() : { title: n.title }),
        summary: () => (failing ? fails('bad summary')() : { title: 'summary' }),
        anyTabVisible: () => (visible ? Promise.reject(new Error('bad visibility')) : false),
      })
      const errors: string[] = []
      t.desktop.on('error', (e) => errors.push((e.cause as Error).message))
      t.notify(note(1))
      t.notify(note(2))
      t.notify(note(3)) // within the interval of none shown: shown
      t.notify(note(4)) // waits for the summary, which throws
      await vi.advanceTimersByTimeAsync(2000)
      visible = true
      t.notify(note(5))
      await settle()
      expect(errors).toEqual(['bad filter', 'bad render', 'bad summary', 'bad visibility'])
      expect(t.shown.map((s) => s.title)).toEqual(['n3'])

      // Without an error handler the console gets it.
      const console = vi.spyOn(globalThis.console, 'error').mockImplementation(() => {})
      const u = setup({ filter: fails('unheard') })
      u.notify(note(1))
      await settle()
      expect(console.mock.calls.map(([e]) => ((e as Error).cause as Error).message)).toEqual(['unheard'])
      vi.useRealTimers()
      await new Promise((resolve) => setTimeout(resolve, 20)) // a real turn: Node tells unhandled rejections then
      expect(escaped).toEqual([])
    } finally {
      process.off('unhandledRejection', onRejection)
    }
  })

  it('on a click focuses the tab, closes the notification and tells the app which one', async () => {
    const focus = vi.fn()
    vi.stubGlobal('focus', focus)
    const onClick = vi.fn()
    const t = setup({ onClick })
    const clicks: unknown[] = []
    t.desktop.on('click', (n) => clicks.push(n?.id))
    t.notify(note(1))
    await settle()
    t.shown[0]!.onclick!()
    expect(focus).toHaveBeenCalledOnce()
    expect(t.shown[0]!.closed).toBe(true)
    expect(onClick).toHaveBeenCalledWith(expect.objectContaining({ id: 'id-1', seq: 1 }))
    expect(clicks).toEqual(['id-1'])
  })

  it('says unsupported where the constructor is missing or throws (Android), and then stops trying', async () => {
    const t = setup({ Notification: undefined })
    vi.stubGlobal('Notification', undefined)
    const none = desktopNotifications(t.client, { anyTabVisible: () => false })
    expect(none.permission).toBe('unsupported')
    await expect(none.request()).resolves.toBe('unsupported')

    let calls = 0
    class Throwing {
      static permission = 'granted'
      constructor() {
        calls++
        throw new TypeError('Illegal constructor. Use ServiceWorkerRegistration.showNotification() instead.')
      }
    }
    const c = fakeClient()
    const android = desktopNotifications(c.client, { Notification: Throwing as unknown as typeof Notification, anyTabVisible: () => false })
    const told: string[] = []
    android.on('permission', (p) => told.push(p))
    expect(android.permission).toBe('granted')
    c.notify(note(1))
    await settle()
    expect(android.permission).toBe('unsupported')
    expect(told).toEqual(['unsupported'])
    await vi.advanceTimersByTimeAsync(5000)
    c.notify(note(2))
    await settle()
    expect(calls).toBe(1)
  })

  it('skips one the constructor refuses for its options, telling it on error, and stays granted for the next', async () => {
    const n = fakeNotification()
    class Picky extends (n.Ctor as unknown as new (title: string, options?: NotificationOptions) => object) {
      constructor(title: string, options?: NotificationOptions & { actions?: unknown }) {
        if (options?.actions)
          throw new TypeError("Failed to construct 'Notification': Actions are only supported for persistent notifications")
        super(title, options)
      }
    }
    const t = setup({
      Notification: Picky as unknown as typeof Notification,
      render: (x) => ({ title: x.title, options: x.seq === 1 ? ({ actions: [] } as NotificationOptions) : {} }),
    })
    const errors: string[] = []
    const told: string[] = []
    t.desktop.on('error', (e) => errors.push((e.cause as Error).message))
    t.desktop.on('permission', (p) => told.push(p))
    t.notify(note(1))
    await vi.advanceTimersByTimeAsync(2000)
    t.notify(note(2))
    await settle()
    expect(errors).toEqual([expect.stringMatching(/Actions are only supported/)])
    expect([t.desktop.permission, told, n.shown.map((s) => s.title)]).toEqual(['granted', [], ['n2']])
  })

  it('asks for the permission only from a user gesture, and tells the change', async () => {
    const t = setup({}, 'default')
    const told: string[] = []
    t.desktop.on('permission', (p) => told.push(p))
    vi.stubGlobal('navigator', { userActivation: { isActive: false } })
    await expect(t.desktop.request()).rejects.toThrow(/must be called from a click or key handler/)
    expect(t.Ctor.requests).toBe(0)
    vi.stubGlobal('navigator', { userActivation: { isActive: true } })
    await expect(t.desktop.request()).resolves.toBe('granted')
    expect(t.Ctor.requests).toBe(1)
    expect(told).toEqual(['granted'])
  })

  it('stops: no more notifications, no listener left on the client', async () => {
    const t = setup()
    t.notify(note(1))
    t.notify(note(2))
    t.desktop.stop()
    await vi.advanceTimersByTimeAsync(5000)
    t.notify(note(3))
    await settle()
    expect(t.shown).toEqual([])
    expect(t.listeners()).toBe(0)
  })

  // Regression: desktopNotifications followed only its client's notification and read events. Once the app closed ann's
  // client (she signed out in a background tab), the summary timer armed for her burst still showed "2 new
  // notifications", and the instance kept her visible-tab lock and hand-off channel.
  it("stops when its client is closed (its user signed out): no summary of that user's left to come, no lock kept", async () => {
    const t = setup()
    for (let i = 1; i <= 3; i++) t.notify(note(i))
    await settle()
    expect(t.shown.map((s) => s.title)).toEqual(['n1'])
    t.close()
    await vi.advanceTimersByTimeAsync(5000)
    expect(t.shown.map((s) => s.title)).toEqual(['n1'])
    expect(t.listeners()).toBe(0)
    // A visible tab's lock is let go of.
    const locks = fakeLocks()
    const c = fakeClient()
    desktopNotifications(c.client, { user: 'ann', Notification: fakeNotification().Ctor })
    await settle()
    expect(locks.held()).toEqual(['belfry:visible#ann'])
    c.close()
    await settle()
    expect(locks.held()).toEqual([])
  })

  // Its end is the client's `closed` status, which a client closed before (a sign-out, an effect run after the client's
  // close) never tells again: it kept that user's visible-tab lock and hand-off channel for the page's life, and showed
  // a summary of what another of the user's tabs handed on.
  it('starts stopped on a client closed already: holds no visible-tab lock, shows no summary of a hand-off', async () => {
    const locks = fakeLocks()
    const { client } = createClient(startMockServer())
    client.close()
    const n = fakeNotification()
    desktopNotifications(client, { user: 'ann', Notification: n.Ctor })
    await settle()
    expect(locks.held()).toEqual([])
    // The tab hidden (the user went elsewhere), another of ann's tabs, leaving, hands on what waited for its summary.
    locks.show('hidden')
    await settle()
    new FakeChannel('belfry:visible#ann').postMessage([{ ...note(1), told: false }])
    await vi.advanceTimersByTimeAsync(5000)
    expect(n.shown).toEqual([])
  })

  // stop() closes the hand-off channel, and a closed BroadcastChannel's postMessage throws: a click on a summary
  // still on the desktop (the user signed out, a component unmounted) threw in the notification's click event.
  it('takes a click on a summary left on the desktop after stop() without throwing', async () => {
    const t = setup()
    for (let i = 1; i <= 3; i++) t.notify(note(i))
    await vi.advanceTimersByTimeAsync(2000)
    expect(t.shown.map((s) => s.title)).toEqual(['n1', '2 new notifications'])
    t.desktop.stop()
    expect(() => t.shown[1]!.onclick!()).not.toThrow()
  })

  it('holds the visible-tab lock only while visible and running: a grant after hiding or stop() lets go at once', async () => {
    // Hidden before the lock is granted (a quick switch of tabs).
    let locks = fakeLocks()
    const a = desktopNotifications(fakeClient().client, { Notification: fakeNotification().Ctor })
    locks.show('hidden')
    await settle()
    expect(locks.held()).toEqual([])
    a.stop()
    vi.unstubAllGlobals()
    // Stopped before it is granted (React StrictMode's unmount after the first mount).
    locks = fakeLocks()
    desktopNotifications(fakeClient().client, { Notification: fakeNotification().Ctor }).stop()
    await settle()
    locks.show('hidden')
    await settle()
    expect(locks.held()).toEqual([])
    // Shown: held, and let go when hidden.
    const b = desktopNotifications(fakeClient().client, { Notification: fakeNotification().Ctor })
    locks.show('visible')
    await settle()
    expect(locks.held()).toEqual(['belfry:visible#'])
    locks.show('hidden')
    await settle()
    expect(locks.held()).toEqual([])
    b.stop()
  })

  it("counts only the same user's visible tabs: another user's visible tab keeps nobody else's quiet", async () => {
    const locks = fakeLocks()
    const bob = desktopNotifications(fakeClient().client, { user: 'bob', Notification: fakeNotification().Ctor })
    await settle()
    expect(locks.held()).toEqual(['belfry:visible#bob'])
    bob.stop()
    // Ann's tab, hidden, beside bob's visible one (its lock held below).
    locks.show('hidden')
    const c = fakeClient()
    const n = fakeNotification()
    desktopNotifications(c.client, { user: 'ann', Notification: n.Ctor })
    const hold = (name: string) => navigator.locks.request(name, { mode: 'shared' }, () => new Promise(() => {}))
    hold('belfry:visible#bob')
    await settle()
    c.notify(note(1))
    await settle()
    expect(n.shown.map((s) => s.title)).toEqual(['n1'])
    // A visible tab of ann's: quiet.
    hold('belfry:visible#ann')
    await vi.advanceTimersByTimeAsync(2000)
    c.notify(note(2))
    await settle()
    expect(n.shown.map((s) => s.title)).toEqual(['n1'])
  })

  it('stopped before the permission status is known, adds no change listener to it', async () => {
    const status = new EventTarget()
    const add = vi.spyOn(status, 'addEventListener')
    vi.stubGlobal('navigator', { permissions: { query: async () => status } })
    setup().desktop.stop()
    await settle()
    expect(add).not.toHaveBeenCalled()
    setup()
    await settle()
    expect(add).toHaveBeenCalledWith('change', expect.any(Function))
  })

  it('refuses a bad interval with a TypeError that says what it got', () => {
    const { client } = fakeClient()
    expect(() => desktopNotifications(client, { interval: -1 })).toThrow(
      new TypeError('desktopNotifications: interval must be a number of ms from 0 to 2^31-1; got -1'),
    )
    // A string (as from a data attribute) quoted: "got 2000" would read as a valid number.
    expect(() => desktopNotifications(client, { interval: '2000' as never })).toThrow(
      new TypeError('desktopNotifications: interval must be a number of ms from 0 to 2^31-1; got "2000"'),
    )
    for (const interval of [Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => desktopNotifications(client, { interval })).toThrow(
        /interval must be a number of ms from 0 to 2\^31-1; got (NaN|Infinity)$/,
      )
    }
  })

  it("refuses an interval past setTimeout's range (2^31-1 ms), whose summary would come at once, as the client refuses its delays", () => {
    const { client } = fakeClient()
    expect(() => desktopNotifications(client, { interval: 2 ** 31 })).toThrow(
      new TypeError('desktopNotifications: interval must be a number of ms from 0 to 2^31-1; got 2147483648'),
    )
    expect(() => desktopNotifications(client, { interval: 2 ** 31 - 1, anyTabVisible: () => false })).not.toThrow()
  })

  it('refuses a filter, render, summary, onClick or anyTabVisible that is no function with a TypeError that says what it got', () => {
    const { client } = fakeClient()
    expect(() => desktopNotifications(client, { filter: 'high' as never })).toThrow(
      new TypeError('desktopNotifications: filter must be a function; got "high"'),
    )
    expect(() => desktopNotifications(client, { render: { title: 'x' } as never })).toThrow(/render must be a function; got object$/)
    expect(() => desktopNotifications(client, { summary: 3 as never })).toThrow(/summary must be a function; got 3$/)
    expect(() => desktopNotifications(client, { onClick: '/inbox' as never })).toThrow(/onClick must be a function; got "\/inbox"$/)
    expect(() => desktopNotifications(client, { anyTabVisible: true as never })).toThrow(/anyTabVisible must be a function; got true$/)
  })

  // `user` names the visible-tab lock and the hand-off channel: a user object (`session.user` for `session.user.id`)
  // made every user's `belfry:visible#[object Object]`, where a visible tab of bob's kept ann's quiet and ann's leaving
  // leader handed her notifications to bob's tabs. '' is the group of the tabs without a user.
  it('refuses a user that is no non-empty string with a TypeError that says what it got', () => {
    const { client } = fakeClient()
    expect(() => desktopNotifications(client, { user: { id: 'ann' } as never })).toThrow(
      new TypeError('desktopNotifications: user must be a non-empty string; got object'),
    )
    expect(() => desktopNotifications(client, { user: ['ann'] as never })).toThrow(/user must be a non-empty string; got object$/)
    expect(() => desktopNotifications(client, { user: 7 as never })).toThrow(/user must be a non-empty string; got 7$/)
    expect(() => desktopNotifications(client, { user: '' })).toThrow(/user must be a non-empty string; got ""$/)
    for (const user of ['ann', undefined]) expect(() => desktopNotifications(client, { user }).stop(), user).not.toThrow()
  })

  // `listeners[type].add(handler)`: a name it does not know met the engine's "Cannot read properties of undefined
  // (reading 'add')", and an `error` handler that is no function threw in fail(), in a promise's catch (an unhandled
  // rejection at the next callback failure).
  it('on() refuses an event name it does not know, and a handler that is no function, with a TypeError that says what it got', () => {
    const { desktop } = setup()
    expect(() => desktop.on('clicked' as never, () => {})).toThrow(
      new TypeError(`desktopNotifications: on() type must be 'error', 'click' or 'permission'; got "clicked"`),
    )
    for (const type of ['error', 'click', 'permission'] as const) {
      expect(() => desktop.on(type, undefined as never), type).toThrow(
        new TypeError('desktopNotifications: on() handler must be a function; got undefined'),
      )
      expect(() => desktop.on(type, 'handler' as never), type).toThrow(/on\(\) handler must be a function; got "handler"$/)
      expect(() => desktop.on(type, () => {})(), type).not.toThrow()
    }
    desktop.stop()
  })

  it('shows a live notification alone a while after the last one, though the wall clock stepped back an hour since', async () => {
    // The last one shown was timed on the wall clock: stepped back an hour (NTP), every live one for an hour went
    // into a "1 new notification" summary, its title and body never shown.
    const t = setup()
    t.notify(note(1))
    await settle()
    await vi.advanceTimersByTimeAsync(10_000) // well over the interval (2 s)
    vi.setSystemTime(Date.now() - 3_600_000)
    await vi.advanceTimersByTimeAsync(1000)
    t.notify(note(2))
    await vi.advanceTimersByTimeAsync(5000)
    expect(t.shown.map((s) => [s.title, s.options.tag])).toEqual([
      ['n1', 'id-1'],
      ['n2', 'id-2'],
    ])
    t.desktop.stop()
  })

  it("refuses no client, and options that are not an object, with belfry's TypeError that says what it got, not the engine's", () => {
    const { client } = fakeClient()
    for (const [args, message] of [
      [[undefined], 'desktopNotifications: client must be a NotificationClient; got undefined'],
      [[null], 'desktopNotifications: client must be a NotificationClient; got null'],
      [['client'], 'desktopNotifications: client must be a NotificationClient; got "client"'],
      [[client, null], 'desktopNotifications: options must be an object; got null'],
      [[client, 'interval=2000'], 'desktopNotifications: options must be an object; got "interval=2000"'],
      [[client, 2000], 'desktopNotifications: options must be an object; got 2000'],
      [[null, null], 'desktopNotifications: options must be an object; got null'],
    ] as const) {
      expect(() => (desktopNotifications as (...a: unknown[]) => unknown)(...args), String(args)).toThrow(new TypeError(message))
    }
    // Options left out (undefined) are the defaults.
    expect(() => desktopNotifications(client, undefined).stop()).not.toThrow()
  })

  it("refuses a Notification that is no constructor, which would pass for a browser without notifications ('unsupported')", () => {
    const { client } = fakeClient()
    expect(() => desktopNotifications(client, { Notification: 'Notification' as never, anyTabVisible: () => false })).toThrow(
      new TypeError('desktopNotifications: Notification must be a function; got "Notification"'),
    )
    expect(() => desktopNotifications(client, { Notification: {} as never })).toThrow(/Notification must be a function; got object$/)
  })
})

// An opaque origin (a sandboxed iframe without allow-same-origin): Chromium refuses to make a BroadcastChannel, and
// every Web Locks call. belfry/shared falls back to a socket of its own; desktopNotifications() on that very client
// threw the browser's SecurityError at the app.
describe('desktopNotifications in an opaque origin (BroadcastChannel and Web Locks refused)', () => {
  class OpaqueChannel {
    constructor() {
      throw new DOMException("Failed to construct 'BroadcastChannel': Can't create BroadcastChannel in an opaque origin", 'SecurityError')
    }
  }
  const refused = () => Promise.reject(new DOMException('Access to the Locks API is denied in this context.', 'SecurityError'))
  beforeEach(() => {
    vi.stubGlobal('BroadcastChannel', OpaqueChannel)
    vi.stubGlobal('navigator', { locks: { request: refused, query: refused } })
    vi.stubGlobal('document', Object.assign(new EventTarget(), { visibilityState: 'visible', hidden: false }))
  })

  it('starts on a client that fell back to a socket of its own, as where there is no channel, without throwing', async () => {
    const server = startMockServer()
    const { client, log } = createClient(server, { connection: sharedConnection() })
    client.connect()
    await tick(1000)
    expect([client.state, client.mode, log.errors.length]).toEqual(['online', 'solo', 1])
    const { Ctor } = fakeNotification('denied')
    const desktop = desktopNotifications(client, { Notification: Ctor })
    expect(desktop.permission).toBe('denied')
    desktop.stop()
  })
})
