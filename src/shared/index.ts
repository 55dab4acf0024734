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
  | { k: 'beat'; e: number }
  | { k: 'hello'; tab: string }
  | { k: 'send'; tab: string; f: ClientFrame }

/** What a joining tab starts from: the user's latest seq and unread count as the leader knows them, and the server's kind. */
interface Snapshot {
  seq: number
  unreadCount: number
  legacy: boolean
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
    return new Shared(host, o, solo, locks, Channel, beat, Math.max(stale, 2 * beat))
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

/** Thrown by the leader's token provider when the token names another user: the tab joins that user's group instead. */
class OtherUser extends Error {}

/**
 * A request's id on the shared socket names the tab that asked: `tab:id`. A
 * batch `subscribe` (sent without an id) gets `tab:`, so its answer goes back
 * to that tab alone.
 */
function tag(f: ClientFrame, tab: string): ClientFrame {
  const id = (f as { requestId?: string }).requestId
  return id !== undefined || f.type === 'subscribe' ? ({ ...f, requestId: `${tab}:${id ?? ''}` } as ClientFrame) : f
}

class Shared implements Connection {
  #state: ConnectionState = 'idle'
  #mode: 'leader' | 'follower' = 'follower'
  readonly #tab = Math.random().toString(36).slice(2)
  #epoch = 0
  #channel: BroadcastChannel | undefined
  #key = ''
  /** The group's user (the token's `sub`). */
  #user: string | undefined
  /** Asking the tab's token for its user: notifications wait (are fetched later) until it answers. */
  #checking = false
  /** The app's token provider; the leader's socket gets one that checks the user first. */
  readonly #token: ResolvedClientOptions['token']
  /** When the leader last said anything. */
  #lastWord = 0
  #watch: ReturnType<typeof setInterval> | undefined
  /** The lock request in force: a newer one replaces it. */
  #queued: AbortController | undefined
  /** While leading: the socket, the end of the lead, and what joining tabs start from. */
  #link: Connection | undefined
  #stepDown: (() => void) | undefined
  #snap: Snapshot = { seq: 0, unreadCount: 0, legacy: false }
  /** The last seq handed to the client (0: none yet), the highest known to exist, what waits for a gap to fill. */
  #cursor = 0
  #want = 0
  readonly #held = new Map<number, Notification>()
  /** The request id of the history page asked for, if one is, and the end of its range. */
  #fetching = ''
  #before = 0
  #fetches = 0
  #retry: ReturnType<typeof setTimeout> | undefined

  constructor(
    private readonly host: LinkHost,
    private readonly o: ResolvedClientOptions,
    private readonly solo: (host: LinkHost) => Connection,
    private readonly locks: LockManager,
    private readonly Channel: new (name: string) => BroadcastChannel,
    private readonly beat: number,
    private readonly stale: number,
  ) {
    const token = o.token
    this.#token = token
    if (typeof token === 'function') {
      o.token = async () => {
        const t = await token()
        if (this.#userOf(t) !== this.#user) {
          queueMicrotask(() => this.#rejoin())
          throw new OtherUser()
        }
        return t
      }
    }
  }

  #userOf(token: string): string | undefined {
    return this.host.auth(token).userId
  }

  get state(): ConnectionState {
    return this.#state
  }

  get legacy(): boolean {
    return this.#link?.legacy ?? this.#snap.legacy
  }

  connect(): void {
    if (this.#state !== 'idle') return
    this.#set('connecting', 'connect')
    void this.#join()
  }

  /** Learns the tab's user (and cursor) from a token, joins the user's group, and waits for the lock. */
  async #join(): Promise<void> {
    let url: string
    let since: number | undefined
    let userId: string | undefined
    try {
      url = await resolve(this.o.url)
      ;({ userId, since } = this.host.auth(await resolve(this.#token)))
    } catch (cause) {
      this.host.error(new BelfryError('url or token provider failed', { cause }))
      this.#retry = setTimeout(() => this.#state === 'connecting' && void this.#join(), this.o.backoff(0))
      return
    }
    if (this.#state === 'closed') return
    this.#user = userId
    this.#key = `belfry:${url}#${userId ?? ''}`
    this.#cursor = this.#want = since ?? 0
    this.#channel = new this.Channel(this.#key)
    this.#channel.onmessage = (e: MessageEvent<Message>) => this.#receive(e.data)
    this.#lastWord = Date.now()
    this.#queue(false)
    this.#post({ k: 'hello', tab: this.#tab })
    // A leader that has said nothing for `stale` ms is frozen or gone: a visible tab takes its place.
    this.#watch = setInterval(() => {
      if (this.#mode === 'follower' && visible() && Date.now() - this.#lastWord > this.stale) {
        this.#lastWord = Date.now()
        this.#queue(true)
      }
    }, this.beat)
  }

  /** Asks for the lock: queued behind the leader, or taken from a leader that stopped beating. */
  #queue(steal: boolean): void {
    this.#queued?.abort()
    const ask = new AbortController()
    this.#queued = ask
    this.locks
      .request(this.#key, steal ? { steal } : { signal: ask.signal }, () => this.#lead())
      .catch(() => {
        // Aborted for a newer request, or closing: nothing to do. Else our lock was stolen: follow.
        if (this.#queued === ask && this.#state !== 'closed') this.#follow()
      })
  }

  /** Holds the lock until it steps down: opens the socket and relays what it gets. */
  #lead(): Promise<void> {
    if (this.#state === 'closed') return Promise.resolve()
    this.#mode = 'leader'
    this.#epoch = Math.max(Date.now(), this.#epoch + 1)
    this.#held.clear()
    this.#fetching = ''
    const relay: LinkHost = {
      status: (s) => {
        if (this.#link !== link) return // stepping down
        this.#snap.legacy = link.legacy
        this.#post({ k: 'state', e: this.#epoch, s, snap: this.#snap })
        // The socket gave up for good (the token was refused): so does this tab, and another leads.
        if (s.to === 'closed') this.close(s.reason)
        else this.#set(s.to, s.reason, s.attempt, s.retryIn)
      },
      auth: (token) => this.host.auth(token),
      online: (f) => {
        this.#snap = { seq: f.seq, unreadCount: f.unreadCount, legacy: link.legacy }
        this.host.online(f)
      },
      frame: (f) => this.#relay(f),
      error: (e) => e.cause instanceof OtherUser || this.host.error(e),
    }
    const link = this.solo(relay)
    this.#link = link
    const beats = setInterval(() => this.#post({ k: 'beat', e: this.#epoch }), this.beat)
    link.connect()
    return new Promise<void>((done) => {
      this.#stepDown = () => {
        this.#stepDown = this.#link = undefined
        clearInterval(beats)
        link.close('step down')
        done()
      }
    })
  }

  /** Stops leading (a newer leader took over while this tab was frozen) and queues again. */
  #follow(): void {
    if (this.#mode === 'leader') {
      this.#stepDown?.()
      this.#mode = 'follower'
      this.#set('reconnecting', 'step down')
    }
    this.#queue(false)
  }

  /** Leader: a frame from the server, for every tab, or for the tab that asked (and, for a read change, news for the others). */
  #relay(f: ServerFrame): void {
    const snap = this.#snap
    if (f.type === 'notification' && f.seq !== undefined) {
      // The client takes every new seq: what this tab has, should it follow again.
      this.#cursor = this.#want = Math.max(this.#cursor, f.seq)
      if (f.seq > snap.seq) this.#snap = { ...snap, seq: f.seq, unreadCount: snap.unreadCount + (f.read ? 0 : 1) }
    }
    if (f.type === 'read') this.#snap = { ...snap, seq: Math.max(snap.seq, f.seq), unreadCount: f.unreadCount }
    const id = (f as { requestId?: string }).requestId
    if (id === undefined) {
      this.host.frame(f)
      // A replay round's end concerns this socket alone: its client asks for the next round.
      if (f.type !== 'replayed') this.#post({ k: 'frame', e: this.#epoch, f })
      return
    }
    const sep = id.indexOf(':')
    const tab = sep < 0 ? this.#tab : id.slice(0, sep)
    const { requestId: _, ...bare } = f as ServerFrame & { requestId?: string }
    const own = sep < 0 ? id : id.slice(sep + 1)
    const reply = (own ? { ...bare, requestId: own } : bare) as ServerFrame
    if (tab === this.#tab) this.host.frame(reply)
    else this.#post({ k: 'frame', e: this.#epoch, to: tab, f: reply })
    if (f.type === 'read') {
      // The server tells a read change to the user's other sockets, not to the one that made it: the leader tells the other tabs.
      this.#post({ k: 'frame', e: this.#epoch, not: tab, f: bare as ServerFrame })
      if (tab !== this.#tab) this.host.frame(bare as ServerFrame)
    }
  }

  #receive(m: Message): void {
    if (this.#state === 'closed') return
    if (m.k === 'hello' || m.k === 'send') {
      const link = this.#link
      if (!link) return
      if (m.k === 'hello')
        this.#post({ k: 'state', e: this.#epoch, to: m.tab, s: { to: link.state, reason: 'join', attempt: 0 }, snap: this.#snap })
      else link.send(tag(m.f, m.tab))
      return
    }
    if (m.e < this.#epoch || (m.k !== 'beat' && ((m.to && m.to !== this.#tab) || ('not' in m && m.not === this.#tab)))) return
    // A newer leader while this tab leads: it was frozen and replaced.
    if (m.e > this.#epoch && this.#mode === 'leader') this.#follow()
    if (this.#mode === 'leader') return
    this.#epoch = m.e
    this.#lastWord = Date.now()
    if (m.k === 'state') {
      const { to, reason, attempt, retryIn } = m.s
      // The leader's socket is gone: before the next, ask the tab's token who its user is, as a socket of its own would.
      if (this.#state === 'online' && to !== 'online') void this.#recheck()
      this.#snap = m.snap
      this.#set(to === 'closed' || to === 'idle' ? 'reconnecting' : to, reason, attempt, retryIn, () => {
        if (to !== 'online') return
        this.#fetching = ''
        if (m.snap.seq < this.#cursor) this.#cursor = m.snap.seq // another database: its numbering
        // No cursor yet (a new tab with nothing stored): like the server for `since: 0`, nothing old is replayed.
        if (this.#cursor > 0) this.#want = Math.max(this.#want, m.snap.seq)
        this.host.online({ type: 'auth_success', message: '', userId: '', seq: m.snap.seq, unreadCount: m.snap.unreadCount })
      })
      this.#fill()
    } else if (m.k === 'frame') {
      const f = m.f
      const fetched = (f as { requestId?: string }).requestId === this.#fetching && this.#fetching !== ''
      if (f.type === 'notification' && f.seq !== undefined) {
        if (this.#checking && this.#cursor > 0) this.#want = Math.max(this.#want, f.seq)
        else this.#take(f)
      } else if (fetched && f.type === 'history') this.#page(f.items as Notification[])
      else if (fetched) {
        // The page was refused (rate limited, …): ask again a little later.
        this.#fetching = ''
        this.#retry = setTimeout(() => this.#fill(), this.o.backoff(0))
      } else this.host.frame(f)
    }
  }

  /** Follower: a notification relayed. In order it goes to the client; past a gap it waits for the gap to fill. */
  #take(f: Notification): void {
    if (this.#cursor === 0) this.#cursor = f.seq - 1 // the first one this new tab sees
    if (f.seq <= this.#cursor) return
    this.#want = Math.max(this.#want, f.seq)
    if (f.seq > this.#cursor + 1) {
      this.#held.set(f.seq, f)
      this.#fill()
    } else {
      this.#hand(f)
      this.#drain()
    }
  }

  #hand(f: Notification): void {
    this.#cursor = f.seq
    this.host.frame(f)
  }

  /** Hands over what waited for a gap that is now filled; drops what a page already brought. */
  #drain(): void {
    for (const seq of this.#held.keys()) if (seq <= this.#cursor) this.#held.delete(seq)
    for (let f = this.#held.get(this.#cursor + 1); f; f = this.#held.get(this.#cursor + 1)) {
      this.#held.delete(f.seq)
      this.#hand(f)
    }
  }

  /** Follower: asks the leader for the oldest page of what it lacks (history below a seq). */
  #fill(): void {
    if (this.#fetching || this.#checking || this.#state !== 'online' || this.#want <= this.#cursor || this.#cursor === 0) return
    clearTimeout(this.#retry)
    this.#before = Math.min(this.#want + 1, this.#cursor + PAGE + 1)
    this.#fetching = `g${++this.#fetches}`
    this.#post({
      k: 'send',
      tab: this.#tab,
      f: { type: 'history', before: this.#before, limit: this.#before - this.#cursor - 1, requestId: this.#fetching },
    })
  }

  /**
   * Follower: a page of history, newest first: every seq in (cursor, before)
   * that exists. A seq missing from it no longer exists (retention): skipped.
   */
  #page(items: readonly Notification[]): void {
    this.#fetching = ''
    for (const n of [...items].reverse()) {
      // One that also came live is handed over as it came (not replayed).
      if (n.seq > this.#cursor && n.seq < this.#before) this.#hand(this.#held.get(n.seq) ?? { ...n, type: 'notification', replayed: true })
    }
    this.#cursor = Math.max(this.#cursor, this.#before - 1)
    this.#drain()
    this.#fill()
  }

  send(frame: ClientFrame): boolean {
    if (this.#link) return this.#link.send(tag(frame, this.#tab))
    if (this.#state !== 'online') return false
    this.#post({ k: 'send', tab: this.#tab, f: frame })
    return true
  }

  close(reason = 'close'): void {
    if (this.#state === 'closed') return
    this.#set('closed', reason)
    this.#leave()
  }

  /** Leaves the group: the lock (or the request for it), the socket if leading, the channel, the timers. */
  #leave(): void {
    const queued = this.#queued
    this.#queued = undefined
    queued?.abort()
    clearInterval(this.#watch)
    clearTimeout(this.#retry)
    this.#stepDown?.()
    this.#channel?.close()
    this.#channel = undefined
  }

  /** The token names another user now: the tab leaves this user's group for that one's. */
  #rejoin(): void {
    if (this.#state === 'closed') return
    this.#leave()
    this.#mode = 'follower'
    this.#epoch = 0
    this.#held.clear()
    this.#fetching = ''
    this.#snap = { seq: 0, unreadCount: 0, legacy: false }
    this.#set('connecting', 'user changed')
    void this.#join()
  }

  /** Follower: asks the tab's token who its user is; another user than the group's: the tab moves to that user's group. */
  async #recheck(): Promise<void> {
    const token = this.#token
    if (typeof token !== 'function' || this.#checking) return
    this.#checking = true
    let user = this.#user
    try {
      user = this.#userOf(await token())
    } catch {
      // The provider failed: the tab stays where it is.
    }
    this.#checking = false
    if (this.#mode === 'follower' && user !== this.#user) this.#rejoin()
    else this.#fill()
  }

  #post(m: Message): void {
    this.#channel?.postMessage(m)
  }

  /** The tab's state, told to the client with the tab's mode; `enter` runs before the client hears of it. */
  #set(to: ConnectionState, reason: string, attempt = 0, retryIn?: number, enter?: () => void): void {
    const from = this.#state
    if (from === to || from === 'closed') return
    this.#state = to
    enter?.()
    this.host.status({ from, to, mode: this.#mode, reason, attempt, retryIn })
  }
}
