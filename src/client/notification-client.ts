import type {
  AuthFrame,
  AuthSuccessFrame,
  ClientFrame,
  HistoryPageFrame,
  JsonObject,
  Notification,
  NotificationFrame,
  ReadFrame,
  Replies,
  ServerFrame,
} from '../protocol/frames.js'
import { CLIENT_FRAME_BYTES, MAX_TOPIC_LENGTH, MAX_TOPICS_PER_FRAME } from '../protocol/guards.js'
import { createDelivery, type Delivery } from './delivery.js'
import { type BelfryError, ProtocolError, RequestError, TimeoutError } from './errors.js'
import { createEmitter } from './events.js'
import { type Connection, type ConnectionMode, type ConnectionState, Link, type LinkHost, type StatusEvent } from './link.js'
import { type ClientOptions, isFunction, resolveClientOptions, show } from './options.js'
import { createRequests, type Request, type Requests } from './requests.js'
import { subject } from './token.js'
import { NEVER } from './transport.js'

/** Read state changed, here or on another tab or device of the user. */
export interface ReadEvent {
  /** Ids that became read (empty when `all`); answering this client's `markRead(ids)`, every id it asked for. */
  ids: string[]
  /** Everything up to `seq` became read. */
  all: boolean
  seq: number
  unreadCount: number
}

/** The events of a {@link NotificationClient}, by name. */
export interface ClientEvents<Data extends object = JsonObject> {
  /** A notification, handed to the app exactly once. */
  notification: Notification<Data>
  /** The connection state changed. */
  status: StatusEvent
  /** Read state changed. */
  read: ReadEvent
  /** The unread count changed. */
  unread: { count: number }
  /** Something went wrong; the client carries on unless `status` says `closed`. */
  error: BelfryError
}

/** One page of history, newest first. */
export interface HistoryPage<Data extends object = JsonObject> {
  items: Notification<Data>[]
  /** Pass as `before` for the next (older) page; undefined on the last page. */
  next?: number | undefined
}

/**
 * Real-time notifications for one user over a WebSocket that reconnects with
 * jittered backoff, resumes from a persisted cursor and hands each
 * notification to the app exactly once.
 *
 * @example
 * const client = new NotificationClient<{ url: string }>({ url: 'wss://example.com/ws', token: fetchToken })
 * client.on('notification', (n) => toast(n.title, n.data?.url))
 * client.connect()
 */
export class NotificationClient<Data extends object = JsonObject> {
  readonly #events = createEmitter<ClientEvents<Data>>()
  readonly #link: Connection
  readonly #requests: Requests
  readonly #delivery: Delivery
  #topics = new Set<string>()
  /** Topics given up that the server has not yet answered `unsubscribed` for: sent again after each auth until it does. */
  readonly #leaving = new Set<string>()
  /**
   * A topic's `unsubscribe` frames sent on this connection and not yet answered (reset by the restore after each auth;
   * a topic has no entry once all are): the answer to one given up, taken again and given up again before the last is
   * sent does not clear it from #leaving.
   * No prototype: a topic may be named `__proto__` or `constructor`.
   */
  #unanswered: Record<string, number> = { __proto__: null } as never
  /** Whose subscriptions #topics and #leaving are (the token's `sub`): a token of another user leaves them behind. */
  #user: string | undefined
  /** Topics subscribed or given up in this task, sent together at its end. */
  readonly #batch = new Set<string>()
  /** The error that stopped the client for good. */
  #fatal: BelfryError | undefined
  /** The last auth said notifications after our cursor expired: the `online` status event says so. */
  #expired: boolean | undefined
  /**
   * The article's server: the ids made for its notifications, the last 65 only (a repeat comes in the same ms as its
   * first, and a page open for days keeps no more).
   */
  #made: string[] = []

  constructor(options: ClientOptions) {
    // None at all (a caller without types): the TypeError of the first option needed, not the engine's.
    const o = resolveClientOptions(options || ({} as ClientOptions))
    // Arrow fields, handed over as they are (a wrapper each would cost bytes).
    const host: LinkHost = {
      status: this.#status,
      auth: this.#auth,
      online: this.#online,
      frame: this.#frame,
      error: (e) => {
        if (e.name === 'AuthError') this.#fatal = e
        this.#report(e)
      },
    }
    const solo = (h: LinkHost) => new Link(o, h)
    const link = o.connection ? o.connection(host, o, solo) : solo(host)
    if (!isFunction(link?.connect)) {
      throw new TypeError(`belfry: options.connection must return a connection, as sharedConnection() does; got ${show(link)}`)
    }
    this.#link = link
    const send = (frame: ClientFrame) => this.#link.send(frame)
    this.#requests = createRequests(send, o.requestTimeout, o.maxQueue, this.#report, this.#read)
    this.#delivery = createDelivery(o.storage, o.ackDelay, send, (count) => this.#events.emit('unread', { count }))
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof ClientEvents<Data>>(type: K, handler: (event: ClientEvents<Data>[K]) => void): () => void {
    if (!isFunction(handler)) throw new TypeError(`belfry: on() takes a function; got ${show(handler)}`)
    return this.#events.on(type, handler)
  }

  /** The connection state. */
  get state(): ConnectionState {
    return this.#link.state
  }

  /**
   * How this tab reaches the server now: `solo`, or with `sharedConnection()`
   * `leader` or `follower` (the `mode` of the status events, readable at any time).
   */
  get mode(): ConnectionMode {
    return this.#link.mode ?? 'solo'
  }

  /**
   * Unread notifications in the user's inbox, as the server last said: 0 before the first auth, and
   * again from when the token names another user until that user's auth (an `unread` event tells it).
   */
  get unreadCount(): number {
    return this.#delivery.unread
  }

  /** Starts connecting. Safe to call twice. */
  connect(): this {
    this.#link.connect()
    return this
  }

  /**
   * Resolves once online, connecting first if `connect()` was not called.
   * Rejects when the client closes first (with the error that stopped it), on
   * `signal`'s abort (with its reason), or after `timeout` ms (`TimeoutError`);
   * the client itself carries on in those last two cases. A `timeout` that is
   * no number of ms from 0, or a `signal` that is no AbortSignal, rejects with
   * a TypeError, and the call does nothing else (not even connect).
   */
  ready({ timeout, signal }: { timeout?: number | undefined; signal?: AbortSignal | undefined } = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      // Checked before anything is armed (the connect, the listener, the timer): a signal that is no
      // AbortSignal (the AbortController itself) would fail only once the timer was set, and fail again in
      // that timer's cleanup, out of its callback; a NaN timeout would never fire, a negative one at once.
      if (!((timeout ?? 0) >= 0) || (signal && !isFunction(signal.addEventListener)))
        throw new TypeError(`belfry: ready() takes { timeout: ms from 0, signal: AbortSignal }; got ${show(timeout)}, ${show(signal)}`)
      this.connect()
      // `failed` with any reason, a falsy one too (abort(null), abort(0)).
      const done = (failed?: boolean, error?: unknown) => {
        off()
        clearTimeout(timer)
        signal?.removeEventListener('abort', abort)
        if (failed) reject(error)
        else resolve()
      }
      const abort = () => done(true, signal!.reason)
      const check = () =>
        this.state === 'online' ? done() : this.state === 'closed' && done(true, this.#fatal ?? new RequestError('closed'))
      const off = this.on('status', check)
      // None for no timeout, or one past setTimeout's range (Infinity, 30 days), which it would take as 1 ms.
      const timer = (timeout! < NEVER &&
        setTimeout(() => done(true, new TimeoutError(`not online within ${timeout} ms`)), timeout)) as ReturnType<typeof setTimeout>
      signal?.addEventListener('abort', abort)
      if (signal?.aborted) abort()
      else check()
    })
  }

  /** One page of the user's history, newest first. */
  history(page?: { before?: number | undefined; limit?: number | undefined }): Promise<HistoryPage<Data>> {
    // An undefined field is left out of the frame (JSON): `before: undefined` asks for the newest page.
    // Resolves with the reply as #read leaves it: the page.
    return this.#request({ type: 'history', ...(page as { before?: number; limit?: number }) }) as Promise<never>
  }

  /**
   * Marks notifications read, on every tab and device of the user: 1–500 ids a call (the protocol's
   * limit; the server refuses more as `bad_frame`, a ProtocolError). A call whose frame would hold
   * 64,000 bytes of JSON or more (some 1,700 ids) is refused at once with that ProtocolError, never
   * sent: past a server's 64 KiB the socket would be closed, and the request sent again at each auth.
   */
  markRead(ids: string | string[]): Promise<ReadEvent> {
    return this.#request({ type: 'mark_read', ids: [ids].flat() }) as Promise<never>
  }

  /**
   * Marks read, on every tab and device of the user, every notification up to the highest `seq` this
   * client knew of when called (the one its unread count covers): a call that waits while offline, or
   * is sent again after a drop, leaves unread what was published after it, which the user never saw.
   * Before the client's first auth it knows of nothing, nor after its token names another user until
   * that user's auth: the call marks all there is when it is sent, as a server that predates the
   * bound always does. The event's `seq` is the last one marked;
   * when newer ones exist, a `read` event at the latest (`all` false, no ids) follows with the count.
   */
  markAllRead(): Promise<ReadEvent> {
    // The bound now, not when the frame goes: undefined (before the user's first auth) leaves it out of the frame.
    return this.#request({ type: 'mark_read', all: true, seq: this.#delivery.seq } as Request) as Promise<never>
  }

  /**
   * Subscribes to a topic, now and after every reconnect; returns the function
   * that unsubscribes (now, and after each auth until the server answers). A topic the server refuses (not allowed, too long, too
   * many) is dropped and reported on `error` with the server's code.
   */
  subscribe(topic: string): () => void {
    if (typeof topic !== 'string' || !topic) throw new TypeError(`belfry: subscribe() takes a non-empty string; got ${show(topic)}`)
    // Past the protocol's length, which no server takes (the frame would fail whole): refused here, and
    // never in #topics (the function returned does nothing).
    if (topic.length > MAX_TOPIC_LENGTH) queueMicrotask(() => this.#refused(topic, 'topic_too_long'))
    else {
      this.#leaving.delete(topic)
      this.#topics.add(topic)
      this.#queue(topic)
    }
    // The user's topics: after a switch, the new user's are another set, which this stop leaves alone.
    const topics = this.#topics
    return () => {
      if (topics.delete(topic) && this.#topics === topics) {
        this.#leaving.add(topic)
        this.#queue(topic)
      }
    }
  }

  /**
   * Closes for good: the socket, every timer and listener. Safe to call twice. The topics changed in
   * this task and the pending ack go out first: no later auth would send them, and a subscription
   * outlives the client (a logout handler's unsubscribe would be lost for good).
   */
  close(): void {
    // Closed already, or offline: nothing to send, and the connection sends nothing.
    this.#topicFrames(this.#batch)
    this.#delivery.ack()
    this.#link.close()
  }

  readonly #report = (e: BelfryError) => this.#events.emit('error', e)

  #refused(topic: string, code: string): void {
    this.#topics.delete(topic)
    this.#report(new ProtocolError(`subscription to "${topic}" refused: ${code}`, { code, topic }))
  }

  /**
   * Queues a topic subscribed or given up: the topics of one task go out together at its end, in as
   * few frames as #topicFrames takes (a frame a topic, an app subscribing to many at start or dropping
   * them as a page unmounts, would spend the user's frame budget). Offline, nothing goes out: #online
   * sends every topic.
   */
  #queue(topic: string): void {
    if (!this.#batch.size) queueMicrotask(() => this.#topicFrames(this.#batch))
    this.#batch.add(topic)
  }

  /**
   * Unsubscribes from the topics of `from` (by default all) in #leaving, then subscribes to those still in
   * #topics (a topic is in one of them at most): the server handles a connection's frames in order, and a
   * topic given up makes room for one taken at maxSubscriptionsPerUser (subscribes first, a swap at the
   * limit had the new topic refused). In frames of MAX_TOPICS_PER_FRAME (500) topics and
   * less than CLIENT_FRAME_BYTES of JSON at most, each topic counted at its worst: length × 6 + 3 bytes
   * (`\u0001`, quotes and comma). A server takes frames of 64 KiB at most (`maxFrameBytes`), past which
   * ws would close the socket (1009) at every restore; a fixed count small enough for the longest
   * topics (40) spent the user's frame budget (rateBurst) when belfry/shared tabs restore theirs
   * through one socket. Short topics go 500 a frame, the longest 41.
   */
  #topicFrames(from?: Set<string>): void {
    for (const [type, set] of [
      ['unsubscribe', this.#leaving],
      ['subscribe', this.#topics],
    ] as const) {
      let topics: string[] = []
      let bytes = 0
      for (const t of from ?? set) {
        if (!set.has(t)) continue
        bytes += t.length * 6 + 3
        if (bytes >= CLIENT_FRAME_BYTES || topics[MAX_TOPICS_PER_FRAME - 1]) {
          this.#link.send({ type, topics })
          topics = []
          bytes = t.length * 6 + 3
        }
        topics.push(t)
        // -~n is n + 1, and 1 for none.
        if (set === this.#leaving) this.#unanswered[t] = -~this.#unanswered[t]!
      }
      if (topics[0]) this.#link.send({ type, topics })
    }
    from?.clear()
  }

  /** A request connects the client if `connect()` was not called yet. */
  async #request<F extends Request>(frame: F): Promise<Replies[F['type']]> {
    const why = this.#link.legacy ? 'not supported by this server' : this.state === 'closed' && 'closed'
    if (why) throw new RequestError(why)
    this.connect()
    return this.#requests.request(frame)
  }

  readonly #status = (e: StatusEvent): void => {
    if (e.from === 'online') this.#delivery.stop()
    if (e.to === 'online' && this.#expired) e.expired = true
    this.#events.emit('status', e)
    if (e.to === 'closed') {
      this.#requests.rejectAll(this.#fatal ?? new RequestError('closed'))
      this.#events.all.clear()
    }
  }

  /**
   * The auth frame's extras. `userId` (the token's `sub`) is what the article's server files sockets under.
   * A token of another user leaves the last user's topics and requests behind.
   */
  readonly #auth = (token: string): Omit<AuthFrame, 'type' | 'token'> => {
    const userId = subject(token)
    this.#user ??= userId
    if (userId !== this.#user) {
      this.#user = userId
      this.#topics = new Set()
      this.#leaving.clear()
      // Made for the last user: sent after this auth, they would read or change the new user's inbox.
      this.#requests.rejectAll(new RequestError('the user changed'))
    }
    // Always a `since` (0: no cursor): a server takes a client without one for the article's, which does not ack.
    return { ...(userId && { userId }), since: this.#delivery.since(userId) }
  }

  /** Runs as the link goes online, before the app hears of it: waiting requests first, then topics (those given up first). */
  readonly #online = (f: AuthSuccessFrame): void => {
    if (this.#link.legacy) {
      this.#requests.rejectAll(new RequestError('not supported by this server'))
    } else {
      this.#requests.flush()
      this.#unanswered = { __proto__: null } as never
      // Every topic in as few frames as the protocol takes: one per topic could spend the user's whole frame budget.
      this.#topicFrames()
    }
    // The article's server removes nothing: an expiry a belfry server told before is not this one's.
    this.#expired = !this.#link.legacy && this.#delivery.online(f)
  }

  readonly #frame = (f: ServerFrame): void => {
    if (this.#requests.settle(f)) return
    switch (f.type) {
      case 'notification':
        this.#deliver(f as NotificationFrame<Data>)
        return
      case 'replayed':
        // More is waiting: page through it before going live.
        if (f.more === true) this.#link.send({ type: 'resume', since: f.seq })
        return
      case 'read':
        // A change made elsewhere, or a reply that came after its request timed out (the only word of
        // that change this client gets). A reply to a pending request was applied as it settled it
        // (#requests calls #read): here, in frame order, before the frames behind it (ws emits those of
        // one TCP read in one go), and the request resolves with the event told.
        this.#read(f)
        return
      case 'subscribed':
        for (const { topic, code } of f.refused ?? []) this.#refused(topic, code)
        return
      case 'unsubscribed':
        // The server answers a connection's frames in order: only the answer to the last unsubscribe sent for
        // a topic (its count down to 0) ends its give-up; one never counted (NaN) ends it too. Its count goes then
        // (`delete` is true): a page online for days that follows a topic per document kept one per topic. The
        // client sends the batch form alone, answered with `topics` (a `topic` read too counted down a topic named
        // "undefined"); flat() takes a hostile server's non-array without throwing.
        for (const t of [f.topics].flat() as string[]) --this.#unanswered[t]! || (delete this.#unanswered[t] && this.#leaving.delete(t))
        return
      case 'error':
        if (f.requestId == null) this.#report(new ProtocolError(f.message, { code: f.code }))
        return
    }
  }

  #deliver({ type: _, ...n }: NotificationFrame<Data>): void {
    // Closed by a handler of an earlier one of a batch: the rest is not the app's, nor its cursor's.
    if (this.state === 'closed') return
    // A frame without a seq before this client is online: the article's server's, relayed to a tab of
    // belfry/shared that joined before the leader's state reached it.
    if (this.#link.legacy || (n.seq === undefined && this.state !== 'online')) {
      // The article's server sends no id, seq or read state: nothing to resume or dedupe by. An id its
      // publisher spread into the frame (a database row's number) goes to the app as a string; without
      // one, the frame's fields are its id (its server stamps each send, the same text on every socket
      // of the user), by which the app, belfry/react and belfry/desktop tell them apart. The stamp is in
      // ms: the same text again (two sends in one ms, with others between them or not) gets as many '+'
      // as make an id not made before. (A JSON object's text ends with '}': with '+'s, it is no other's.)
      // Every tab of the user gets the same frames in the same order (one that joins later misses only
      // those before it): each makes the same ids.
      let made = JSON.stringify(n)
      while (this.#made.includes(made)) made += '+'
      this.#made = this.#made.slice(-64).concat(made)
      this.#events.emit('notification', {
        seq: 0,
        read: false,
        priority: 'medium',
        ...(n as object),
        id: String(n.id ?? made),
      } as Notification<Data>)
    } else if (n.seq === undefined) {
      this.#report(new ProtocolError('notification without seq'))
    } else if (this.#delivery.accept(n)) {
      // Accepted first (cursor, unread, ack): a handler may close the client.
      this.#events.emit('notification', n)
    }
  }

  /**
   * A reply or a `read` frame as the app gets it, without its type and requestId (the page of a
   * `history` reply); a `read` one is applied first: unreadCount, then the `read` event.
   */
  readonly #read = ({ type, requestId: _, ...event }: ReadFrame | HistoryPageFrame) => {
    if (type === 'read') {
      this.#delivery.read(event as ReadEvent)
      this.#events.emit('read', event as ReadEvent)
    }
    return event
  }
}
