/**
 * belfry/desktop: the browser's desktop notifications for what arrives while
 * no tab of the app is visible, shown by one tab, one per notification, with
 * bursts folded into a summary, and a permission asked for only from a click.
 *
 * @example
 * import { desktopNotifications } from 'belfry/desktop'
 * const desktop = desktopNotifications(client, { onClick: (n) => n && router.push(`/inbox/${n.id}`) })
 * enableButton.hidden = desktop.permission !== 'default'
 * enableButton.onclick = () => desktop.request()
 */
import { BelfryError, type JsonObject, type Notification, type NotificationClient } from 'belfry'

/** The browser's permission, or `unsupported` where pages cannot show notifications (no constructor, or one that throws 'Illegal constructor', as on Android). */
export type DesktopPermission = NotificationPermission | 'unsupported'

/** What a desktop notification shows: its title and the browser's options (`body`, `icon`, …). `tag` and `data` are belfry's. */
export interface DesktopContent {
  title: string
  options?: Omit<NotificationOptions, 'tag' | 'data'> | undefined
}

/** Options of {@link desktopNotifications}. */
export interface DesktopOptions<Data extends object = JsonObject> {
  /** Which notifications may go to the desktop (a read one never does). @default all */
  filter?: ((n: Notification<Data>) => boolean) | undefined
  /** What one shows. @default its title and body */
  render?: ((n: Notification<Data>) => DesktopContent) | undefined
  /** What the summary of `count` notifications shows. @default "`count` new notifications" */
  summary?: ((count: number) => DesktopContent) | undefined
  /** Called when one is clicked (the tab focused, the notification closed): e.g. to open it. `undefined` for a summary. Same as `on('click')`. */
  onClick?: ((n: Notification<Data> | undefined) => void) | undefined
  /** At most one desktop notification per this many ms (up to 2^31-1); what comes between waits for one summary. @default 2000 */
  interval?: number | undefined
  /** The Notification constructor. @default globalThis.Notification */
  Notification?: typeof Notification | undefined
  /** Whether some tab of the app is visible. @default this tab's visibility, and its other tabs' (the same `user`'s) through Web Locks */
  anyTabVisible?: (() => boolean | Promise<boolean>) | undefined
  /**
   * The signed-in user (the token's `sub`): only a visible tab of the same
   * user's keeps this one quiet, not one where another user is signed in; and
   * a leaving leader's hand-off and a click's reset of the summary's count go
   * to that user's tabs only.
   * A non-empty string.
   * @default none: any visible tab of the origin (and every tab of the origin gets those)
   */
  user?: string | undefined
}

/** The events of {@link DesktopNotifications}, by name. */
export interface DesktopEvents<Data extends object = JsonObject> {
  permission: DesktopPermission
  click: Notification<Data> | undefined
  /**
   * A callback of the options (`filter`, `render`, `summary`, `anyTabVisible`) threw, or the browser refused
   * one notification (e.g. options of `render`'s it takes from a service worker only, as `actions`): the error's
   * `cause`. Without a handler, `console.error` gets it.
   */
  error: BelfryError
}

/** The handle {@link desktopNotifications} returns. */
export interface DesktopNotifications<Data extends object = JsonObject> {
  /** The permission now. */
  readonly permission: DesktopPermission
  /**
   * Asks the browser for the permission. Call it from a click (or key) handler:
   * browsers ignore or block a request without a user gesture, so without one
   * it rejects and asks nothing. Resolves with the permission after.
   */
  request(): Promise<DesktopPermission>
  /**
   * `permission`: the permission changed (here, or in the browser's
   * settings). `click`: one was clicked (the tab is focused and it is closed
   * by then), with its notification (`undefined` for a summary). Returns the
   * unsubscribe function.
   */
  on<K extends keyof DesktopEvents<Data>>(type: K, handler: (event: DesktopEvents<Data>[K]) => void): () => void
  /** Stops: no more desktop notifications, no more events. Closing the client stops it too (one closed already: it starts stopped). */
  stop(): void
}

/** A value as the client's TypeErrors show what they got (its `show`): a string quoted, an object or function by its type. */
const got = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : v && /^[of]/.test(typeof v) ? typeof v : String(v))

const ownVisible = () => globalThis.document?.visibilityState === 'visible'

/**
 * Shows the browser's desktop notifications for `client`'s live
 * notifications while no tab of the app is visible. One tab shows them: the
 * leader when tabs share a connection (`belfry/shared`); with a socket per tab
 * each tab shows its own, and the tag (the notification's id) makes the
 * browser keep one. A notification that comes as catch-up (`replayed`) is
 * never shown alone: it counts towards a summary. One read already (on
 * another tab or device) is not news: never shown, and one read while it
 * waits drops out of the summary. A summary tells all those of the summary
 * it replaces too, till one is clicked (in any of the user's tabs). A leader
 * whose tab goes away (closed, reloaded), or that stops leading, hands what
 * waits and what its summary told to the tab that leads next, which shows the
 * summary when due and counts the told ones in its next. Stops when `client`
 * is closed, and starts stopped on one closed already.
 */
export function desktopNotifications<Data extends object = JsonObject>(
  client: NotificationClient<Data>,
  options: DesktopOptions<Data> = {},
): DesktopNotifications<Data> {
  /** A bad argument or option (a default passes): the TypeError names it, what it got (as the client's show it) and what it must be. */
  const check = (name: string, ok: unknown, expected: string, v: unknown) => {
    if (!ok) throw new TypeError(`desktopNotifications: ${name} must be ${expected}; got ${got(v)}`)
  }
  // Checked before anything reads them, or the engine's TypeError would say nothing of what is expected.
  check('options', options && typeof options === 'object', 'an object', options)
  check('client', client?.on, 'a NotificationClient', client)
  const { onClick, interval = 2000, filter } = options
  // It names the visible-tab lock and the hand-off channel: an object (`session.user` for its id) would put every user's
  // tabs in one group, and hand one user's notifications to another's tabs; '' is the group of tabs without a user.
  check('user', options.user !== '' && typeof (options.user ?? '') === 'string', 'a non-empty string', options.user)
  // Up to setTimeout's limit, as the client's delays: past it the summary's timer would fire at once.
  check('interval', interval >= 0 && interval < 2 ** 31 && typeof interval === 'number', 'a number of ms from 0 to 2^31-1', interval)
  // A Notification that is no constructor would look like a browser without notifications ('unsupported').
  for (const name of ['filter', 'render', 'summary', 'onClick', 'anyTabVisible', 'Notification'] as const) {
    // undefined or a function: the only types that start with u or f.
    check(name, /^[uf]/.test(typeof options[name]), 'a function', options[name])
  }
  const render = options.render ?? ((n: Notification<Data>) => ({ title: n.title, options: { body: n.body } }))
  const summary = options.summary ?? ((count: number) => ({ title: `${count} new notification${count > 1 ? 's' : ''}` }))
  /** Unset where pages cannot show notifications: none, or found to throw 'Illegal constructor'. */
  let Ctor: typeof Notification | undefined = options.Notification ?? globalThis.Notification
  const locks = globalThis.navigator?.locks
  /** The Web Lock each visible tab of the user's holds (shared mode): a tab that finds one held knows one is visible. */
  const visibleLock = `belfry:visible#${options.user ?? ''}`
  const anyTabVisible =
    options.anyTabVisible ?? (async () => ownVisible() || (await locks?.query())?.held?.some((l) => l.name === visibleLock))

  // A client closed already tells no `closed` status again (its end stops the rest, below): it starts stopped, with no
  // hand-off channel, and lets go of the visible-tab lock as it is granted.
  let stopped = client.state === 'closed'
  /**
   * The client's mode as its last status told it. A leader that steps down on a failing token or url provider tells
   * nothing till another tab leads (its status then says follower) or it leads again: till then it counts as the
   * leader, and shows what it counted when due, which no other tab has.
   */
  let mode = client.mode
  /**
   * When the next may be shown alone: `interval` after the last one shown (unset, none shown: at once). The
   * notifications the summary on the desktop tells and those waiting for the next, which tells them all as it replaces
   * it (the same tag), till one is clicked or comes due while a tab is visible. (A `close` cannot say the user
   * dismissed one: Chromium fires it on one replaced too, by another tab's summary as well.)
   */
  let last: number | undefined
  let waiting: Notification<Data>[] = []
  let timer: ReturnType<typeof setTimeout> | undefined
  const listeners = {
    permission: new Set<(p: DesktopPermission) => void>(),
    click: new Set<(n: Notification<Data> | undefined) => void>(onClick && [onClick]),
    error: new Set<(e: BelfryError) => void>(),
  }
  /** An app callback threw, or one was refused: told to the `error` handlers (or the console), never left as an unhandled rejection. */
  const fail = (cause: unknown) => {
    const e = new BelfryError('desktopNotifications: a callback or the browser threw', { cause })
    for (const f of listeners.error.size ? listeners.error : [console.error]) f(e) // console's methods need no `this`
  }
  const cleanup: (() => void)[] = []
  /** Listens to `target` till stop(). */
  const listen = (target: EventTarget, type: string, f: () => void) => {
    target.addEventListener(type, f)
    cleanup.push(() => target.removeEventListener(type, f))
  }

  // A leader that goes away (its tab closed, reloaded, navigated) hands what its summaries told and what waits for the
  // next to the tab that leads next: Chromium never shows one constructed in pagehide (it is shown a task later, which
  // never comes), while a BroadcastChannel message posted then arrives. Its name is the visible lock's: the same user's tabs.
  // Only where there are window events (pagehide): Node has a BroadcastChannel, but no tab to close. None once stopped,
  // nor where the browser refuses to make one (an opaque origin's SecurityError: as where there is none).
  let channel: BroadcastChannel | undefined
  try {
    channel = (!stopped &&
      (globalThis as { addEventListener?: object }).addEventListener &&
      globalThis.BroadcastChannel &&
      new BroadcastChannel(visibleLock)) as BroadcastChannel | undefined
  } catch {}

  const permission = (): DesktopPermission => (Ctor ? Ctor.permission : 'unsupported')
  let told = permission()
  const tell = () => {
    // biome-ignore lint/suspicious/noAssignInExpressions: keeps belfry/desktop within its size budget
    if (told !== (told = permission())) for (const f of listeners.permission) f(told)
  }

  /**
   * Shows `n` (tagged with its id) or, without one, the summary; or learns that this browser cannot (its constructor
   * throws 'Illegal constructor').
   */
  const show = (c: DesktopContent, n?: Notification<Data>) => {
    try {
      const shown = new Ctor!(c.title, { ...c.options, tag: n ? n.id : 'belfry:summary', data: n && { id: n.id, seq: n.seq } })
      shown.onclick = () => {
        globalThis.focus?.()
        shown.close()
        if (!n) {
          waiting = []
          // The count starts over in every tab of the user's (each with a socket of its own counts its own): an empty
          // list, which a tab of an earlier version takes as nothing handed on. (After stop() the channel is closed: it would throw.)
          stopped || channel?.postMessage([])
        }
        for (const f of listeners.click) f(n)
      }
      last = performance.now() + interval
    } catch (e) {
      // Android's says so for every one: pages there cannot show them. Any other error is this one's (an option
      // the browser refuses, as Chromium does `actions`): the next may well be shown.
      if (/Illegal constructor/.test(e as string)) {
        // test() takes it as String(e) does
        Ctor = undefined
        tell()
      } else fail(e)
    }
  }

  /**
   * Whether this tab should show anything now: allowed, not a follower, and no tab of the app visible. A follower by its
   * last status and by its client's mode now: a tab that took over from a leader whose socket was connecting is
   * connecting too, and tells no status (so no lead) till its own socket's state changes, while a summary handed to it
   * comes due.
   */
  const mayShow = async () =>
    permission() === 'granted' && (mode !== 'follower' || client.mode !== 'follower') && !(await anyTabVisible()) && !stopped

  /**
   * One more for the summary, shown `interval` from now (so no sooner than `interval` after the last one shown); one a
   * summary told already (`toldBefore`, handed on) only counts in the next. One held already (handed on twice, or by a
   * tab with a socket of its own that has it too) counts once.
   */
  const wait = (n: Notification<Data>, toldBefore?: boolean) => {
    if (waiting.some((w) => w.id === n.id)) return
    waiting.push(n)
    if (!toldBefore)
      timer ??= setTimeout(
        () =>
          (async () => {
            timer = undefined
            if (waiting[0] && (await mayShow())) show(summary(waiting.length))
            else waiting = []
          })().catch(fail),
        interval,
      )
  }

  /**
   * What the summary on the desktop told and what waits for the next, from a leader to the tab that leads next: as its
   * tab goes away, or as it follows another. Marked told when none is pending, so that the next shows none for them
   * alone (a pending one tells them all).
   */
  const handOff = () => waiting[0] && mode === 'leader' && channel?.postMessage(waiting.map((n) => ({ ...n, told: !timer })))

  /** The handle's stop(), and the client's end. */
  const stop = () => {
    stopped = true
    clearTimeout(timer)
    // Kept: a second stop() (the app's, after the client's end) undoes each again, which changes nothing. The list
    // stays too: nothing reads it once the timer and the listeners are gone.
    cleanup.map((off) => off())
    for (const type in listeners) listeners[type as keyof typeof listeners].clear()
  }

  cleanup.push(
    // The client closed (its user signed out, its token refused): what waits, and would come due, is that user's,
    // as are the visible-tab lock and the hand-off channel.
    client.on('status', (e) => {
      // Another tab leads now (this one stepped down, or was replaced while frozen): that one shows the summary when due.
      e.to === 'closed' ? stop() : e.mode === 'follower' && handOff()
      mode = e.mode
    }),
    client.on('notification', (n) =>
      (async () => {
        // Read already (elsewhere, before this catch-up): not news.
        if (n.read || (filter && !filter(n))) return
        // A tab visible: the user sees the app, and what the summaries told is no news either. (A follower
        // shows nothing, and a leader gone, whose summary it may show, sends no more.)
        if (!(await mayShow())) waiting = []
        else if (n.replayed || timer || performance.now() < last!) wait(n)
        else show(render(n), n)
      })().catch(fail),
    ),
    // Read (on another tab or device) while waiting or told: not news for the summary.
    client.on('read', (e) => {
      waiting = waiting.filter((n) => (e.all ? n.seq > e.seq : !e.ids.includes(n.id)))
    }),
  )

  if (channel) {
    // Only a list of notifications, with an id and a seq (any script of the origin may post on the channel, and a tab
    // of another deploy); an empty list is a click's reset.
    channel.onmessage = ({ data }) =>
      // biome-ignore lint/suspicious/noAssignInExpressions: keeps belfry/desktop within its size budget
      Array.isArray(data) && (data[0] ? data.map((n) => typeof n?.id === 'string' && n.seq >= 0 && wait(n, n.told)) : (waiting = []))
    // Not only while a summary is pending: what the one on the desktop told counts in the next leader's summary too.
    listen(globalThis, 'pagehide', handOff)
    cleanup.push(() => channel.close())
  }

  // While visible, this tab holds a shared lock: the other tabs' anyTabVisible sees it.
  if (locks && !options.anyTabVisible && globalThis.document) {
    let release: (() => void) | undefined
    const track = () => {
      if (ownVisible()) {
        // Granted once the tab is hidden again or stopped (or to a second request while one is held): let go at once.
        release ||
          locks
            .request(
              visibleLock,
              { mode: 'shared' },
              () => ownVisible() && !stopped && !release && new Promise<void>((done) => (release = done)),
            )
            .catch(() => {})
      } else release = release?.() as undefined
    }
    track()
    listen(document, 'visibilitychange', track)
    cleanup.push(() => release?.())
  }

  // A change made in the browser's settings.
  globalThis.navigator?.permissions
    ?.query({ name: 'notifications' })
    .then((status) => stopped || listen(status, 'change', tell))
    .catch(() => {})

  return {
    get permission() {
      return permission()
    },
    async request() {
      if (Ctor) {
        if (globalThis.navigator?.userActivation?.isActive === false) {
          throw new BelfryError('desktopNotifications: request() must be called from a click or key handler (browsers refuse it otherwise)')
        }
        await Ctor.requestPermission()
        tell()
      }
      return permission()
    },
    on(type, handler) {
      const set = listeners[type] as Set<typeof handler>
      check('on() type', set instanceof Set, "'error', 'click' or 'permission'", type)
      // An error handler that is no function would throw in fail(), in a promise's catch: an unhandled rejection.
      check('on() handler', typeof handler === 'function', 'a function', handler)
      set.add(handler)
      return () => set.delete(handler)
    },
    stop,
  }
}
