/**
 * belfry/shared: one socket per browser profile, server URL and user, shared
 * by all the user's tabs.
 *
 * ```
 *  tab A (leader) ── socket ── server        Web Locks: one holder per group = the leader
 *     │  ▲                                   BroadcastChannel: the group's messages
 *     ▼  │ frames, state, beats
 *  tab B, tab C (followers): requests go to the leader, replies come back to the asking tab only
 * ```
 *
 * Every tab keeps its own client (events, requests, cursor). The leader relays
 * the server's frames; a follower drops a `seq` at or below its cursor, takes
 * cursor + 1, and fills a gap (a late join, a new leader, a lost message) with
 * history pages it asks the leader for. When the leader's tab closes its lock
 * passes to the next tab, which connects and resumes from its own cursor; a
 * leader that stops beating (a frozen background tab) is replaced by a
 * visible tab (`steal`), and steps down when it wakes. Without Web Locks or
 * BroadcastChannel each tab connects on its own (mode `solo`).
 *
 * @example
 * import { NotificationClient } from 'belfry'
 * import { sharedConnection } from 'belfry/shared'
 * const client = new NotificationClient({ url, token, connection: sharedConnection() })
 */
import {
  BelfryError,
  type ClientFrame,
  type Connection,
  type ConnectionFactory,
  type ConnectionState,
  type CursorStorage,
  type LinkHost,
  type ResolvedClientOptions,
  type ServerFrame,
  type StatusEvent,
} from 'belfry'

/** Options of {@link sharedConnection}. */
export interface SharedConnectionOptions {
  /** ms between the leader's heartbeats. @default 1000 */
  beat?: number | undefined
  /** ms without a word from the leader after which a visible tab takes its place. @default 3000 */
  stale?: number | undefined
  /** The lock manager. @default navigator.locks */
  locks?: LockManager | undefined
  /** The BroadcastChannel constructor. @default globalThis.BroadcastChannel */
  BroadcastChannel?: (new (name: string) => BroadcastChannel) | undefined
}

/** What tabs say to each other on the group's channel. `e`: the leader's epoch (newer leaders have larger ones). */
type Message =
  | { k: 'state'; e: number; to?: string | undefined; s: Omit<StatusEvent, 'from' | 'mode'>; snap: Snapshot }
  | { k: 'frame'; e: number; to?: string | undefined; not?: string | undefined; f: ServerFrame }
  | { k: 'hello'; tab: string }
  | { k: 'send'; tab: string; f: ClientFrame }

/** What a joining tab starts from: the user's latest seq and unread count as the leader knows them, and the server's kind. */
interface Snapshot {
  seq: number
  unreadCount: number
  legacy: boolean
  /** The server's floor (retention), for each tab's client to tell whether its cursor is below it. */
  oldestSeq?: number
}

type Notification = Extract<ServerFrame, { type: 'notification' }>

const resolve = async <T>(p: T | (() => T | Promise<T>)): Promise<T> => (typeof p === 'function' ? (p as () => T | Promise<T>)() : p)
const visible = () => globalThis.document?.visibilityState !== 'hidden'
/** Largest page a follower asks for (the server's history limit). */
const PAGE = 100

/**
 * The `connection` option that shares one socket among the user's tabs (one
 * browser profile, one server URL, one user). Falls back to a socket per tab
 * where Web Locks or BroadcastChannel is missing (e.g. plain http on a host
 * other than localhost, where `navigator.locks` is undefined).
 */
export function sharedConnection(options: SharedConnectionOptions = {}): ConnectionFactory {
  const { beat = 1000, stale = 3000 } = options
  for (const [name, v] of Object.entries({ beat, stale })) {
    if (!(Number.isFinite(v) && v > 0)) throw new TypeError(`sharedConnection: ${name} must be a positive number of ms; got ${String(v)}`)
  }
  return (host, o, solo) => {
    const locks = options.locks ?? globalThis.navigator?.locks
    const Channel = options.BroadcastChannel ?? globalThis.BroadcastChannel
    if (!locks || !Channel) return solo(host)
    o.storage = ownCursor(o.storage)
    return shared(host, o, solo, locks, Channel, beat, Math.max(stale, 2 * beat))
  }
}

/**
 * The tabs of a profile share the stored cursor, which only ever moves
 * forward, whichever tab writes it. A tab reads it once, when it starts for a
 * user; after that its own cursor is the one it resumes from (a tab that
 * falls behind and then leads must not skip what it has not seen).
 */
function ownCursor(storage: CursorStorage): CursorStorage {
  const mine = new Map<string, string | null>()
  return {
    getItem: (k) => {
      if (!mine.has(k)) mine.set(k, storage.getItem(k))
      return mine.get(k) ?? null
    },
    setItem: (k, v) => {
      mine.set(k, v)
      if (Number(v) > (Number(storage.getItem(k)) || 0)) storage.setItem(k, v)
    },
  }
}

/** Thrown by the tab's token provider when the token names another user than the group's: the tab joins that user's group instead. */
const OTHER_USER = new Error('another user')

/**
 * A frame's request id on the shared socket names the tab that sent it:
 * `tab:id`, or `tab:` for a frame sent without one (a batch `subscribe`, a
 * `resume`), so the answer goes back to that tab alone. An ack gets no answer.
 */
const tag = (f: ClientFrame, tab: string): ClientFrame =>
  f.type === 'ack' ? f : ({ ...f, requestId: `${tab}:${(f as { requestId?: string }).requestId ?? ''}` } as ClientFrame)

/**
 * One tab's connection in its user's group: a closure rather than a class, as
 * its locals minify to single letters where private fields would not.
 */
function shared(
  host: LinkHost,
  o: ResolvedClientOptions,
  solo: (host: LinkHost) => Connection,
  locks: LockManager,
  Channel: new (name: string) => BroadcastChannel,
  beat: number,
  stale: number,
): Connection {
  let state: ConnectionState = 'idle'
  let mode: 'leader' | 'follower' = 'follower'
  const tab = `${Math.random()}`
  /** The leader's epoch: a newer leader has a larger one. */
  let epoch = 0
  let channel: BroadcastChannel | undefined
  let key = ''
  /** The group's user (the token's `sub`). */
  let user: string | undefined
  /** Asking the tab's token for its user: notifications wait (are fetched later) until it answers. */
  let checking = false
  /** When the leader last said anything. */
  let lastWord = 0
  let watch: ReturnType<typeof setInterval> | undefined
  let retry: ReturnType<typeof setTimeout> | undefined
  /** Counts lock requests: a request granted after a newer one was made lets go at once. */
  let asked = 0
  /** While leading: the socket, the end of the lead, and what joining tabs start from. */
  let link: Connection | undefined
  let stepDown: (() => void) | undefined
  let snap: Snapshot = { seq: 0, unreadCount: 0, legacy: false }
  /** Leader: its socket's last status event. */
  let last: Omit<StatusEvent, 'from' | 'mode'> = { to: 'connecting', reason: 'connect', attempt: 0 }
  /** The last seq handed to the client (0: none yet), the highest known to exist, what waits for a gap to fill. */
  let cursor = 0
  let want = 0
  const held = new Map<number, Notification>()
  /** The request id of the history page asked for, if one is, and the end of its range. */
  let fetching = ''
  let before = 0
  let fetches = 0

  /** The app's token provider; the leader's socket gets one that checks the user first. */
  const token = o.token
  if (typeof token === 'function') {
    o.token = async () => {
      const t = await token()
      if (host.auth(t).userId === user) return t
      queueMicrotask(rejoin)
      throw OTHER_USER
    }
  }

  const post = (m: Message) => channel?.postMessage(m)
  /** Leader: tells every tab its socket's state and what a joining tab starts from. */
  const announce = () => post({ k: 'state', e: epoch, s: last, snap })

  /** The tab's state, told to the client with the tab's mode; `enter` runs before the client hears of it. */
  function set(to: ConnectionState, reason: string, attempt = 0, retryIn?: number, enter?: () => void): void {
    const from = state
    if (from === to || from === 'closed') return
    state = to
    enter?.()
    host.status({ from, to, mode, reason, attempt, retryIn })
  }

  /** Learns the tab's user (and cursor) from a token, joins the user's group, and waits for the lock. */
  async function join(): Promise<void> {
    let url: string
    let since: number | undefined
    let userId: string | undefined
    try {
      url = await resolve(o.url)
      ;({ userId, since } = host.auth(await resolve(token)))
    } catch (cause) {
      host.error(new BelfryError('url or token provider failed', { cause }))
      retry = setTimeout(() => state === 'connecting' && void join(), o.backoff(0))
      return
    }
    if (state === 'closed') return
    user = userId
    key = `belfry:${url}#${userId ?? ''}`
    cursor = want = since ?? 0
    channel = new Channel(key)
    channel.onmessage = (e: MessageEvent<Message>) => receive(e.data)
    lastWord = Date.now()
    queue(false)
    post({ k: 'hello', tab })
    // A leader that has said nothing for `stale` ms is frozen or gone: a visible tab takes its place.
    watch = setInterval(() => {
      if (mode === 'follower' && visible() && Date.now() - lastWord > stale) {
        lastWord = Date.now()
        queue(true)
      }
    }, beat)
  }

  /** Asks for the lock: queued behind the leader, or taken from a leader that stopped beating. */
  function queue(steal: boolean): void {
    const ask = ++asked
    locks
      .request(key, { steal }, () => (ask === asked ? lead() : undefined))
      // The lock was stolen: follow (unless this request was replaced or the tab left).
      .catch(() => ask === asked && state !== 'closed' && follow())
  }

  /** Holds the lock until it steps down: opens the socket and relays what it gets. */
  function lead(): Promise<void> {
    if (state === 'closed') return Promise.resolve()
    mode = 'leader'
    epoch = Math.max(Date.now(), epoch + 1)
    held.clear()
    fetching = ''
    const socket = solo({
      status: (s) => {
        if (link !== socket) return // stepping down
        snap.legacy = socket.legacy
        last = s
        announce()
        // The socket gave up for good (the token was refused): so does this tab, and another leads.
        if (s.to === 'closed') close(s.reason)
        else set(s.to, s.reason, s.attempt, s.retryIn)
      },
      auth: (t) => host.auth(t),
      online: (f) => {
        snap = { ...f, legacy: socket.legacy }
        host.online(f)
      },
      frame: relay,
      error: (e) => e.cause === OTHER_USER || host.error(e),
    })
    link = socket
    // Beats: the state again, every `beat` ms, which also puts right a tab that missed a message.
    const beats = setInterval(announce, beat)
    socket.connect()
    return new Promise<void>((done) => {
      stepDown = () => {
        stepDown = link = undefined
        clearInterval(beats)
        socket.close('step down')
        done()
      }
    })
  }

  /** Stops leading (a newer leader took over while this tab was frozen) and queues again. */
  function follow(): void {
    // Woken to a lost lock, its overdue timers may run before the new leader's word arrives: wait for it.
    lastWord = Date.now()
    if (mode === 'leader') {
      stepDown?.()
      mode = 'follower'
      set('reconnecting', 'step down')
    }
    queue(false)
  }

  /** Leader: a frame from the server, for every tab, or for the tab that asked (and, for a read change, news for the others). */
  function relay(f: ServerFrame): void {
    if (f.type === 'notification' && f.seq !== undefined) {
      // The client takes every new seq: what this tab has, should it follow again.
      cursor = want = Math.max(cursor, f.seq)
      if (f.seq > snap.seq) snap = { ...snap, seq: f.seq, unreadCount: snap.unreadCount + (f.read ? 0 : 1) }
    }
    if (f.type === 'read') snap = { ...snap, seq: Math.max(snap.seq, f.seq), unreadCount: f.unreadCount }
    const id = (f as { requestId?: string }).requestId
    if (id === undefined) {
      host.frame(f)
      // A replay round's end concerns this socket alone: its client asks for the next round.
      if (f.type !== 'replayed') post({ k: 'frame', e: epoch, f })
      return
    }
    const sep = id.indexOf(':')
    const to = sep < 0 ? tab : id.slice(0, sep)
    const { requestId: _, ...bare } = f as ServerFrame & { requestId?: string }
    const own = id.slice(sep + 1)
    const reply = (own ? { ...bare, requestId: own } : bare) as ServerFrame
    if (to === tab) host.frame(reply)
    else post({ k: 'frame', e: epoch, to, f: reply })
    if (f.type === 'read') {
      // The server tells a read change to the user's other sockets, not to the one that made it: the leader tells the other tabs.
      post({ k: 'frame', e: epoch, not: to, f: bare as ServerFrame })
      if (to !== tab) host.frame(bare as ServerFrame)
    }
  }

  function receive(m: Message): void {
    if (state === 'closed') return
    if (m.k === 'hello' || m.k === 'send') {
      if (!link) return
      if (m.k === 'hello') announce()
      else link.send(tag(m.f, m.tab))
      return
    }
    if (m.e < epoch || (m.to && m.to !== tab) || ('not' in m && m.not === tab)) return
    // A newer leader while this tab leads: it was frozen and replaced.
    if (m.e > epoch && mode === 'leader') follow()
    if (mode === 'leader') return
    epoch = m.e
    lastWord = Date.now()
    if (m.k === 'state') {
      const { to, reason, attempt, retryIn } = m.s
      // The leader's socket is gone: before the next, ask the tab's token who its user is, as a socket of its own would.
      if (state === 'online' && to !== 'online') void recheck()
      snap = m.snap
      set(to === 'closed' || to === 'idle' ? 'reconnecting' : to, reason, attempt, retryIn, () => {
        if (to !== 'online') return
        fetching = ''
        if (snap.seq < cursor) cursor = snap.seq // another database: its numbering
        // No cursor yet (a new tab with nothing stored): like the server for `since: 0`, nothing old is replayed.
        if (cursor > 0) want = Math.max(want, snap.seq)
        host.online({ type: 'auth_success', message: '', userId: '', ...snap })
      })
      fill()
    } else if (m.k === 'frame') {
      const f = m.f
      const fetched = fetching !== '' && (f as { requestId?: string }).requestId === fetching
      if (f.type === 'notification' && f.seq !== undefined) {
        if (checking && cursor > 0) want = Math.max(want, f.seq)
        else take(f)
      } else if (fetched) {
        // A page, or its refusal (rate limited, …): then the next beat asks again.
        if (f.type === 'history') page(f.items as Notification[])
        else fetching = ''
      } else host.frame(f)
    }
  }

  /** Follower: a notification relayed. In order it goes to the client; past a gap it waits for the gap to fill. */
  function take(f: Notification): void {
    if (cursor === 0) cursor = f.seq - 1 // the first one this new tab sees
    if (f.seq <= cursor) return
    want = Math.max(want, f.seq)
    held.set(f.seq, f)
    drain(0)
  }

  /**
   * Hands over, in order, what is held and may go: the next seq, and every
   * seq up to `floor` (the end of a page: each seq up to there that exists is
   * in hand, one missing no longer exists). Then asks for what is missing.
   */
  function drain(floor: number): void {
    for (const seq of [...held.keys()].sort((a, b) => a - b)) {
      if (seq > Math.max(cursor, floor) + 1) break
      const f = held.get(seq)!
      held.delete(seq)
      if (seq > cursor) {
        cursor = seq
        host.frame(f)
      }
    }
    cursor = Math.max(cursor, floor)
    fill()
  }

  /** Follower: asks the leader for the oldest page of what it lacks (history below a seq). */
  function fill(): void {
    if (fetching || checking || state !== 'online' || want <= cursor || cursor === 0) return
    before = Math.min(want + 1, cursor + PAGE + 1)
    fetching = `g${++fetches}`
    post({ k: 'send', tab, f: { type: 'history', before, limit: before - cursor - 1, requestId: fetching } })
  }

  /** Follower: a page of history, newest first: every seq in (cursor, before) that exists. One that also came live goes as it came. */
  function page(items: readonly Notification[]): void {
    fetching = ''
    for (const n of items) if (n.seq < before && !held.has(n.seq)) held.set(n.seq, { ...n, type: 'notification', replayed: true })
    drain(before - 1)
  }

  /** Leaves the group: the lock (or the request for it), the socket if leading, the channel, the timers. */
  function leave(): void {
    asked++
    clearInterval(watch)
    clearTimeout(retry)
    stepDown?.()
    channel?.close()
    channel = undefined
  }

  /** The token names another user now: the tab leaves this user's group for that one's. */
  function rejoin(): void {
    if (state === 'closed') return
    leave()
    mode = 'follower'
    epoch = 0
    held.clear()
    fetching = ''
    snap = { seq: 0, unreadCount: 0, legacy: false }
    set('connecting', 'user changed')
    void join()
  }

  /** Follower: asks the tab's token who its user is (another user than the group's: the tab moves to that user's group). */
  async function recheck(): Promise<void> {
    if (checking) return
    checking = true
    try {
      await resolve(o.token)
    } catch {
      // Another user (the tab moves), or the provider failed (the tab stays where it is).
    }
    checking = false
    fill()
  }

  function close(reason = 'close'): void {
    if (state === 'closed') return
    set('closed', reason)
    leave()
  }

  return {
    get state() {
      return state
    },
    get legacy() {
      return link?.legacy ?? snap.legacy
    },
    connect() {
      if (state !== 'idle') return
      set('connecting', 'connect')
      void join()
    },
    send(frame) {
      if (link) return link.send(tag(frame, tab))
      if (state !== 'online') return false
      post({ k: 'send', tab, f: frame })
      return true
    },
    close,
  }
}
