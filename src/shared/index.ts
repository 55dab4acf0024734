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
 * passes to the next tab, which connects and resumes from its own cursor (as
 * it does from a leader whose token provider fails, to a tab whose provider
 * may work); a leader that stops beating (a frozen background tab) is replaced by a
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
  type LinkHost,
  type ServerFrame,
  type StatusEvent,
} from 'belfry'

/** Options of {@link sharedConnection}. */
export interface SharedConnectionOptions {
  /** ms between the leader's heartbeats, from 1 to 2^31-1 (setTimeout's range). @default 1000 */
  beat?: number | undefined
  /** ms without a word from the leader after which a visible tab takes its place, from 1 to 2^31-1 (at least 2 beats are waited). @default 3000 */
  stale?: number | undefined
  /** The lock manager. @default navigator.locks */
  locks?: LockManager | undefined
  /** The BroadcastChannel constructor. @default globalThis.BroadcastChannel */
  BroadcastChannel?: (new (name: string) => BroadcastChannel) | undefined
}

/** A frame with the request id it may carry. */
type Frame<F> = F & { requestId?: string | undefined }

/**
 * What tabs say to each other on the group's channel. The leader's carry its
 * epoch `e` (newer leaders have larger ones, never 0): its state `s` (with
 * the snapshot `n`), or a frame `f` for every tab, for one tab (`to`) or for
 * all but one (`not`). A follower's carry none: a frame `f` to send to the
 * server, or nothing (a joining tab's hello, answered with the state).
 */
interface Message {
  e?: number
  s?: StatusEvent
  n?: Snapshot
  f?: ServerFrame | ClientFrame
  to?: string
  not?: string
}

/**
 * What a joining tab starts from: the leader's last `auth_success` (the
 * user's latest seq and unread count, the server's floor), kept up to date,
 * and the server's kind.
 */
type Snapshot = Extract<ServerFrame, { type: 'auth_success' }> & { legacy: boolean }

type Notification = Extract<ServerFrame, { type: 'notification' }>

const resolve = async <T>(p: T | (() => T | Promise<T>)): Promise<T> => (typeof p === 'function' ? (p as () => T | Promise<T>)() : p)

/**
 * The `connection` option that shares one socket among the user's tabs (one
 * browser profile, one server URL, one user). Falls back to a socket per tab
 * where Web Locks or BroadcastChannel is missing (e.g. plain http on a host
 * other than localhost, where `navigator.locks` is undefined).
 */
export function sharedConnection(options: SharedConnectionOptions = {}): ConnectionFactory {
  // null would meet JavaScript's own TypeError below, which says nothing of what is expected; a string, none.
  if (!options || typeof options !== 'object') throw new TypeError(`sharedConnection: options must be an object; got ${options}`)
  const { beat = 1000 } = options
  let { stale = 3000 } = options
  const check = (name: string, v: number) => {
    // A number (not `true`, which `>= 1` would let through) in setTimeout's range, as the client's delays: past it
    // setInterval fires every millisecond (0 ms in browsers), and the leader would beat as often.
    if (!(v >= 1 && v < 2 ** 31 && typeof v === 'number'))
      throw new TypeError(`sharedConnection: ${name} must be a number of ms from 1 to 2^31-1; got ${v}`)
  }
  check('beat', beat)
  check('stale', stale)
  stale = Math.max(stale, 2 * beat)
  // One tab's connection in its user's group, all in this one closure (no class, no helper functions taking it
  // apart): its locals minify to single letters where private fields would not, and no parameter lists are repeated.
  // Its functions are arrows (consts), which minify to one `let` list shorter than `function` declarations, in the
  // order that gzips smallest (`npm run size`).
  return (host, o, solo) => {
    const locks = options.locks ?? globalThis.navigator?.locks
    const Channel = options.BroadcastChannel ?? globalThis.BroadcastChannel
    if (!locks || !Channel) return solo(host)
    // The tabs of a profile share the stored cursor, which only moves forward,
    // whichever tab writes it, unless a tab moves it back: its client does so on
    // purpose alone (the server started over on another database, whose
    // numbering the next page must resume from). A tab reads it until it finds
    // one (once, when it starts for a user, if one is stored); after that its own
    // cursor is the one it resumes from (a tab that falls behind and then leads
    // must not skip what it has not seen). (`o.storage` is replaced at the end.)
    const storage = o.storage
    const mine: Record<string, string | null> = {}
    let state: ConnectionState = 'idle'
    /** The state the last status event went to: `state` is ahead of it while a handler runs as the tab goes online. */
    let told: ConnectionState = state
    const tab = `${Math.random()}`
    /** The leader's epoch: a newer leader has a larger one. On the wall clock, as tabs compare it (a step back: `epoch + 1`). */
    let epoch = 0
    let channel: BroadcastChannel | undefined
    /** The group's user (the token's `sub`). */
    let user: string | undefined
    /** While the tab's token is asked for its user, the check's time limit: notifications wait (are fetched later) till it answers or passes. */
    let checking: ReturnType<typeof setTimeout> | undefined
    /** The latest check (its time limit), answered or not, until the tab leaves its group: only its answer may move the tab. */
    let check: unknown
    /**
     * When the leader last said anything, or later: a leader whose provider failed puts it at its own retry, so that
     * no word of another tab (a failing one's too) nor a hidden beat has it take the lock back before then
     * (`Math.max` wherever it is heard), unless it follows a leader online first (see follow()). On the monotonic clock
     * (performance.now()): the wall clock steps (NTP, the user setting the time, a VM restored), and a step back would
     * hide a frozen leader's silence for as long, a step forward of seconds make a live leader's look like `stale`.
     */
    let lastWord: number
    /** The tab's one timer: a join's time limit, the retry of a failed join, then the interval of beats and watching the leader (clearTimeout clears either, and its name the client has too). */
    let watch: ReturnType<typeof setInterval> | undefined
    /** A leader's whose provider failed: its queueing again (one at a time; the tab's next queueing or leaving ends it). */
    let retry: ReturnType<typeof setTimeout> | undefined
    /**
     * The latest lock request's controller (none once the tab left): aborting it withdraws a request still queued,
     * which would otherwise wait behind the leader's lock, holding this closed connection, for as long as it leads.
     * A request granted after a newer one was made, or after the tab left, lets go at once.
     */
    let asked: AbortController | undefined
    /** While leading (the tab's mode is `leader` exactly while it has one): the socket and the end of the lead. */
    let link: Connection | undefined
    let stepDown: (() => void) | undefined
    /**
     * How often in a row the tab's token provider failed as it led (each time it
     * hands the lock on): the socket of its next lead backs off from there, as
     * one socket that kept retrying would. (Until the tab is online again.)
     */
    let fails = 0
    const backoff = o.backoff
    /** What joining tabs start from: empty until a leader's socket is online for the group's user (the server's kind unknown till then: not legacy). */
    let snap = {} as Snapshot
    /** Leader: its socket's last status event (a socket tells its first as it connects, before any announcement). */
    let last!: StatusEvent
    /**
     * The last seq handed to the client (0: none yet), and what waits for a gap
     * to fill (by seq: an object's integer keys come in ascending order). The
     * highest seq known to exist is the snapshot's (see note()).
     */
    let cursor = 0
    let held: Record<number, Notification> = {}
    /**
     * The history page asked for, if one is: its `before` (the end of its range), which is its request id; and whether
     * the last one found nothing past the cursor.
     */
    let fetching: number | undefined
    let sparse: boolean | undefined

    /**
     * The fields of a token's auth frame; a token that names another user than
     * the group's moves the tab to that user's group (before a socket of the
     * group's opens with it).
     */
    const auth = (t: string) => {
      const a = host.auth(t)
      if (a.userId !== user) queueMicrotask(rejoin)
      return a
    }

    /**
     * The snapshot moved on by a frame: the leader's by each frame it relays, a follower's (the last beat's) by each
     * the leader relayed to it, as the leader's was: its seq is the highest known to exist, up to which a follower
     * fills a gap.
     */
    const note = (f: ServerFrame): undefined => {
      if (f.type === 'notification' && f.seq! > snap.seq) {
        snap.seq = f.seq!
        if (!f.read) snap.unreadCount++
      }
      if (f.type === 'read') {
        snap.seq = Math.max(snap.seq, f.seq)
        snap.unreadCount = f.unreadCount
      }
    }

    /** Leader: a frame from the server, for every tab, or for the tab that asked (and, for a read change, news for the others). */
    const relay = (f: Frame<ServerFrame>): void => {
      // The client takes every new seq: what this tab has, should it follow again.
      if (f.type === 'notification' && f.seq! > cursor) cursor = f.seq!
      note(f)
      // Every request id on the socket was tagged (`tab:id`). Any other (none, one of the server's own, no string), or
      // one on a notification (which answers nothing), makes no reply: the frame is for every tab, as a solo client's.
      const [to, own] = `${f.requestId}`.split(':') as [string, string?]
      if (own == null || f.type === 'notification') {
        host.frame(f)
        // A replay round's end concerns this socket alone: its client asks for the next round.
        if (f.type !== 'replayed') post({ e: epoch, f })
        return
      }
      const reply = { ...f, requestId: own || undefined } as ServerFrame
      if (to === tab) host.frame(reply)
      else post({ e: epoch, to, f: reply })
      if (f.type === 'read') {
        // The server tells a read change to the user's other sockets, not to the one that made it: the leader tells the other tabs.
        delete f.requestId
        post({ e: epoch, not: to, f })
        if (to !== tab) host.frame(f)
      }
    }

    const post = (m: Message) => channel?.postMessage(m)
    /** Leader: tells every tab its socket's state and what a joining tab starts from. */
    const announce = () => post({ e: epoch, s: last, n: snap })

    /** Learns the tab's user (and cursor) from a token, joins the user's group, and waits for the lock. */
    const join = async (): Promise<void> => {
      // A handler of the `connecting` told just before may have closed the tab: it joins nothing.
      if (state === 'closed') return
      let url: string
      let a: ReturnType<LinkHost['auth']>
      /**
       * The providers, one after the other, within one connectTimeout (in `watch`: leave() clears it), as a socket's
       * attempt waits for them: one that fails, or has not answered by then, is reported and asked again later. Once
       * `watch` is no longer this join's time limit (it passed, or the tab closed or joined again), what the providers
       * say is ignored, as a socket ignores a superseded attempt's.
       */
      const fail = (e: BelfryError) => {
        if (watch !== timer) return
        clearTimeout(timer)
        // Before the error event: a handler that closes the tab clears it.
        watch = setTimeout(join, o.backoff(0))
        host.error(e)
      }
      // biome-ignore lint/suspicious/noAssignInExpressions: keeps belfry/shared within its size budget
      const timer = (watch = setTimeout(
        // The client's words for a provider that has not answered within connectTimeout.
        () => fail(new BelfryError('url or token provider did not answer within connectTimeout')),
        o.connectTimeout,
      ))
      try {
        url = await resolve(o.url)
        a = host.auth(await resolve(o.token))
        // Closed, or joined again, meanwhile (leave() dropped `watch`): nothing more to do.
        if (watch !== timer) return
        clearTimeout(timer)
        // A group of its own (a user's): its leaders' epochs and its seqs.
        epoch = 0
        held = {}
        user = a.userId
        cursor = a.since! // the client always says one (0: none)
        // Nothing of another group's leader either (a tab whose user changed): leading before its socket is online, it
        // would hand the tabs that join the old user's floor, to which they would raise their cursors.
        snap = {} as Snapshot
        // biome-ignore lint/suspicious/noAssignInExpressions: keeps belfry/shared within its size budget
        ;(channel = new Channel(`belfry:${url}#${user ?? ''}`)).onmessage = receive
      } catch (cause) {
        // Past the providers (`a`), the browser refused the channel (an opaque origin's SecurityError): no group.
        return a! ? alone(cause) : fail(new BelfryError('url or token provider failed', { cause }))
      }
      follow()
      post({})
      watch = setInterval(() => {
        // Leading: the state again, every `beat` ms, which also puts right a tab that missed a message.
        if (link) announce()
        // Hidden, or woken from a freeze (its timer late: the leader's silence jumped past `stale` + 2 beats, where
        // it grows a beat at a time), it waits for the leader's words, which may come after its overdue timer, as a
        // leader woken to a lost lock does.
        else if (globalThis.document?.hidden || performance.now() - lastWord > stale + 2 * beat)
          lastWord = Math.max(lastWord, performance.now())
        // A leader that has said nothing for `stale` ms is frozen or gone: a visible tab takes its place.
        else if (performance.now() - lastWord > stale) follow(true)
      }, beat)
    }

    /** Follower: asks the tab's token who its user is (another user than the group's: the tab moves to that user's group). */
    const recheck = (): void => {
      if (checking) return
      // The provider failed, or has not answered within connectTimeout (no longer than a socket's own attempt waits
      // for it): the tab stays where it is. One that answers later still moves the tab if it names another user, unless
      // a newer check was made or the tab left its group since (`check`): an older answer than what the tab went by
      // since is stale, and would move it back. The end of an earlier check (its answer, its time) does not end a later one.
      const done = () => {
        if (checking !== timer) return
        checking = clearTimeout(timer) as undefined
        fill()
      }
      // biome-ignore lint/suspicious/noAssignInExpressions: keeps belfry/shared within its size budget
      const timer = (checking = check = setTimeout(done, o.connectTimeout))
      resolve(o.token)
        .then((t) => check === timer && auth(t))
        .then(done, done)
    }

    /**
     * The tab's state, told to the client with the tab's mode. Going online, the
     * tab's client and cursor first start from the snapshot (the auth of the
     * leader's socket).
     */
    const set = (to: ConnectionState, s: Pick<StatusEvent, 'reason'> & Partial<StatusEvent>): void => {
      if (state === 'closed' || state === to) return
      state = to
      if (to === 'online') {
        // A tab that stepped down on a failing provider (`fails`) and follows a leader online queues for the lock now,
        // as every follower is queued, not at its retry: that leader's tab may close before then, and no tab would take
        // over. (Tabs whose providers all fail never go online: each keeps to its retry.)
        if (fails && !link) follow()
        fetching = fails = 0
        // Another database: its numbering, in which what was held for a gap (of the old one) means other notifications.
        if (snap.seq < cursor) {
          cursor = snap.seq
          held = {}
        }
        host.online(snap)
      }
      // A handler may have closed the tab as it went online: that told its own status, from the last one told.
      // `told` moves before the handlers run (one may close the tab).
      if (state === to)
        // biome-ignore lint/suspicious/noAssignInExpressions: keeps belfry/shared within its size budget
        host.status({ attempt: 0, ...s, from: told, to: (told = to), mode: link ? (channel ? 'leader' : 'solo') : 'follower' })
    }

    /** Holds the lock until it steps down: opens the socket and relays what it gets. (A tab that left, closed or not, dropped `asked`: its grant never gets here.) */
    const lead = (): Promise<void> => {
      epoch = Math.max(Date.now(), epoch + 1)
      // Its own socket asks the token from now on: a follower's check still out is stale (0: no timer's id).
      check = fetching = 0
      held = {}
      const socket = solo({
        ...host,
        auth,
        status: (s) => {
          if (link !== socket) return // stepping down
          last = s
          announce()
          // The socket gave up for good (the token was refused): so does this tab, and another leads.
          if (s.to === 'closed') close(s.reason)
          else set(s.to, s)
          // The tab's token (or url) provider failed, its session gone maybe, or did not answer (the error just told; the
          // same reason: stepping down closes the socket, so the next lead asks afresh): a tab whose provider works leads
          // meanwhile. This one queues again when its socket would have retried (or once it follows a leader online), and
          // till then takes no silence for a frozen leader's (a tab alone retries at the pace of a socket of its own).
          // Unless a handler of this status closed the tab: that stepped down and cleared the timers and the channel
          // already, and a retry armed now would outlive the tab. (A tab alone has no channel: its socket retries.)
          if (s.reason === 'token or url failed' && channel) {
            fails++
            stepDown!()
            lastWord = performance.now() + s.retryIn!
            retry = setTimeout(queue, s.retryIn)
          }
        },
        online: (f) => (snap = { ...f, legacy: socket.legacy }),
        frame: relay,
      })
      return new Promise<void>((done) => {
        stepDown = () => {
          stepDown = link = undefined
          socket.close()
          done()
        }
        link = socket
        // After stepDown is set: connect() tells `connecting` at once, and a handler that closes the tab then steps it down.
        socket.connect()
      })
    }

    /**
     * Waits for a leader's word from now on and queues for the lock (`steal`: takes it from a leader that stopped
     * beating): as the tab joins or steals, once it stops leading (a newer leader took over while it was frozen), and
     * once it follows a leader online after it stepped down on a failing provider (before its retry).
     */
    const follow = (steal?: boolean): void => {
      // Woken to a lost lock, its overdue timers may run before the new leader's word arrives: wait for it. `lastWord`
      // is ahead of now only from a failed leader's stepping down to its retry (its next lead or steal comes after):
      // following a leader online then, the tab drops it with the retry, as it waited for a tab whose provider works.
      lastWord = performance.now()
      if (link) {
        stepDown!()
        set('reconnecting', { reason: 'step down' })
      }
      // A closed tab never queues (a status handler may close it as it steps down).
      if (state !== 'closed') queue(steal)
    }

    const receive = ({ data: m }: MessageEvent<Message>): void => {
      if (state === 'closed') return
      const f = m.f as Frame<ServerFrame>
      if (!m.e) {
        // A follower's: for the leader alone.
        if (link) f ? link.send(f as ClientFrame) : announce()
        return
      }
      if (m.e < epoch || (m.to && m.to !== tab) || m.not === tab) return
      // A newer leader while this tab leads: it was frozen and replaced.
      if (m.e > epoch && link) follow()
      if (link) return
      epoch = m.e
      lastWord = Math.max(lastWord, performance.now())
      if (m.s) {
        const to = m.s.to
        if (state === 'online')
          // The leader's socket is gone: before the next, ask the tab's token who its user is, as a socket of its own would.
          to !== 'online'
            ? recheck()
            : // Online still, its count other than the beat's (see note()): the tab missed a read change, or a notification.
              // Its client takes the beat's, as a read change made elsewhere: it counts every seq up to the beat's, which
              // may still come (filled from history). Nothing goes to the server.
              m.n!.unreadCount - snap.unreadCount &&
              host.frame({ type: 'read', ids: [], all: false, seq: m.n!.seq, unreadCount: m.n!.unreadCount })
        snap = m.n!
        // What exists: up to the leader's latest seq (`snap.seq`, moved on by what it relays since, see note()), which its
        // every beat carries (one relayed that never got here is fetched), in its socket's numbering (after another
        // database's, lower). Without a cursor fill() asks for nothing.
        // Retention removed every seq up to the floor: a cursor below it goes there (its client says `expired`).
        if (cursor && cursor < snap.oldestSeq!) cursor = snap.oldestSeq!
        set(to === 'closed' ? 'reconnecting' : to, m.s)
        fill()
      } else if (!note(f) && f.type === 'notification' && f.seq) {
        // In order it goes to the client; past a gap it waits for the gap to fill. While the user is checked it waits to be fetched.
        // One at or below the cursor is held too: drain() deletes it unhanded, as every held seq the cursor has passed.
        if (cursor && checking) return
        cursor ||= f.seq - 1 // the first one this new tab sees
        held[f.seq] = f
        drain(0)
      } else if (fetching && +f.requestId! === fetching) {
        // A page, or its refusal (rate limited, …): then the next beat asks again.
        const before = fetching
        fetching = 0
        if (f.type === 'history') {
          // Newest first: every seq in [next, before) that exists. One that also came live goes as it came.
          for (const n of f.items) if (n.seq < before) held[n.seq] ??= { ...n, type: 'notification', replayed: true }
          // Nothing past the cursor (a seq that jumped: a hostile server, another database): the next page is the newest
          // 100 that exist, not the next 100 seqs. (No item, or one without a seq, found nothing either.)
          sparse = !(cursor < (f.items[0]?.seq as number))
          // A page cut short (by bytes or its limit) says where the rest starts: what it brought waits for the older page.
          // A `next` not below the page asked for (a broken server's) would ask for that page for ever; as a number:
          // one given as a string would never match its answer.
          if (before > f.next! && f.next! > cursor + 1) fill(+f.next!)
          else drain(before - 1)
        }
      } else host.frame(f)
    }

    /**
     * Hands over, in order, what is held and may go: the next seq, and every
     * seq up to `floor` (the end of a page: each seq up to there that exists is
     * in hand, one missing no longer exists). Then asks for what is missing.
     * A handler that closes the tab leaves the rest to a client that drops it.
     */
    const drain = (floor: number): void => {
      for (const f of Object.values(held)) {
        if (f.seq! - 1 > Math.max(cursor, floor)) break
        delete held[f.seq!]
        if (f.seq! > cursor) {
          cursor = f.seq!
          host.frame(f)
        }
      }
      cursor = Math.max(cursor, floor)
      fill()
    }

    /**
     * Follower: asks the leader for the oldest page of what it lacks (100 seqs, the server's history limit), or the
     * newest (after a page that found nothing), or for what comes before `before` (the rest of the range).
     */
    const fill = (before?: number) =>
      // One expression (callers ignore its value): nothing while a page is on its way or the user is checked, offline, or
      // with nothing missing past a cursor (none yet: nothing to ask for).
      !fetching &&
      !checking &&
      state === 'online' &&
      snap.seq > cursor &&
      cursor &&
      post({
        f: {
          type: 'history',
          // `fetching` till the page comes (its `before` is its request id).
          // biome-ignore lint/suspicious/noAssignInExpressions: keeps belfry/shared within its size budget
          before: (fetching = before ||= (sparse ? snap.seq : Math.min(snap.seq, cursor + 100)) + 1),
          limit: Math.min(100, before - cursor - 1),
          requestId: `${tab}:${before}`,
        },
      })

    /** Leaves the group: the lock (or withdraws the request for it), the socket if leading, the channel, the timers. */
    const leave = (): void => {
      asked = asked?.abort() as undefined
      clearTimeout(watch)
      clearTimeout(retry)
      check = checking = watch = clearTimeout(checking) as undefined
      stepDown?.()
      channel = channel?.close() as undefined
    }

    /**
     * Asks for the lock: queued behind the leader, or taken from a leader that stopped beating. A request still queued
     * is withdrawn first. A queued one's options are its controller, whose `signal` withdraws it; a steal takes no
     * signal (the browser refuses both), and needs none: it is granted at once.
     */
    const queue = (steal?: boolean): void => {
      clearTimeout(retry)
      asked?.abort()
      // biome-ignore lint/suspicious/noAssignInExpressions: keeps belfry/shared within its size budget
      const ask = (asked = new AbortController())
      // The lock's name is the group's channel's: open whenever the tab queues (join() opens it first; a closed tab never
      // gets here: follow() looks, and leave() clears the interval and the retry, which a closed tab never arms), and no
      // variable of its own to keep.
      locks
        .request(channel!.name, steal ? { steal } : ask, () => ask === asked && lead())
        // Unless this request was replaced or the tab left (a withdrawn one rejects with an AbortError too): the lock was
        // stolen (an AbortError), so follow; or the browser refuses Web Locks (an opaque origin's SecurityError, at once,
        // to every request): asking again would loop.
        .catch((e) => ask === asked && (e?.name === 'AbortError' ? follow() : alone(e)))
    }

    /**
     * Where the browser refuses Web Locks or BroadcastChannel: a socket of the tab's own, as where they are missing
     * (mode `solo`: leading with no channel), told once on `error` with the browser's reason. Its provider's failures
     * are its socket's to retry (no group to hand the lead to). The error goes last: a handler that closes the tab
     * steps it down.
     */
    const alone = (cause: unknown) => {
      leave()
      lead()
      host.error(new BelfryError('Web Locks or BroadcastChannel refused: a socket of its own', { cause }))
    }

    /** The token names another user now: the tab leaves this user's group for that one's. */
    const rejoin = (): void => {
      if (state === 'closed') return
      leave()
      set('connecting', { reason: 'user changed' })
      void join()
    }

    /** Final (a second call changes nothing: set() ignores it and leave() has nothing left to do). */
    const close = (reason = 'close'): void => {
      set('closed', { reason })
      leave()
    }

    // The options are changed here, after every declaration, so the declarations minify to one `let` list.
    // The cursor storage (see `mine`): its other fields as they are, a `volatile` one still has the client ack by the clock.
    o.storage = {
      ...storage,
      getItem: (k) => (mine[k] ??= storage.getItem(k)),
      setItem: (k, v) => {
        // Below the tab's own (a move back), or past the stored one (+null is 0; a stored value that is no number counts as 0).
        if (+v < +mine[k]! || +v > (+storage.getItem(k)! || 0)) storage.setItem(k, v)
        mine[k] = v
      },
    }
    // The socket's backoff (see `fails`).
    o.backoff = (n) => backoff(n + fails)

    return {
      get state() {
        return state
      },
      get legacy() {
        // The leader's connection's mode while it is online (as a socket's own): the next server may be belfry's.
        return state === 'online' && snap.legacy
      },
      get mode() {
        return link ? (channel ? 'leader' : 'solo') : 'follower'
      },
      connect() {
        if (state !== 'idle') return
        set('connecting', { reason: 'connect' })
        void join()
      },
      send(frame: Frame<ClientFrame>) {
        /**
         * A frame's request id on the shared socket names the tab that sent it:
         * `tab:id`, or `tab:` for a frame sent without one (a batch `subscribe`, a
         * `resume`), so the answer goes back to that tab alone. An ack gets no answer.
         */
        const f = frame.type === 'ack' ? frame : ({ ...frame, requestId: `${tab}:${frame.requestId ?? ''}` } as ClientFrame)
        // Offline, nothing is sent (false); online it goes to the leader (post returns nothing: true).
        return link ? link.send(f) : state === 'online' && !post({ f })
      },
      close,
    }
  }
}
