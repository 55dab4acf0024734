import type { AuthSuccessFrame, JsonObject, Notification, NotificationFrame, ReadFrame, ServerFrame } from '../protocol/index.js'
import { type BelfryError, ProtocolError, RequestError } from './errors.js'
import { Emitter } from './events.js'
import { type ConnectionState, Link, type StatusEvent } from './link.js'
import { type ClientOptions, type ResolvedClientOptions, resolveClientOptions } from './options.js'
import { createRequests, type Requests } from './requests.js'

/** Read state changed, here or on another tab or device of the user. */
export interface ReadEvent {
  /** Ids that became read (empty when `all`). */
  ids: string[]
  /** Everything up to `seq` became read. */
  all: boolean
  seq: number
  unreadCount: number
}

/** The events of a {@link NotificationClient}, by name. */
export interface ClientEvents<Data extends JsonObject = JsonObject> {
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
export interface HistoryPage<Data extends JsonObject = JsonObject> {
  items: Notification<Data>[]
  /** Pass as `before` for the next (older) page; absent on the last page. */
  next?: number
}

/** Reads the `sub` of a JWT without verifying it: only to keep one cursor per user. */
function subject(token: string): string {
  try {
    // atob gives one character per byte; escape + decodeURIComponent reads those bytes as UTF-8.
    return String(JSON.parse(decodeURIComponent(escape(atob((token.split('.')[1] ?? '').replace(/-/g, '+').replace(/_/g, '/'))))).sub ?? '')
  } catch {
    return ''
  }
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
export class NotificationClient<Data extends JsonObject = JsonObject> {
  readonly #o: ResolvedClientOptions
  readonly #events = new Emitter<ClientEvents<Data>>()
  readonly #link: Link
  readonly #requests: Requests
  readonly #topics = new Set<string>()
  /** The last seq handed to the app; sent as `since` on every connect. */
  #cursor = 0
  #cursorKey = ''
  #acked = 0
  #ackTimer: ReturnType<typeof setTimeout> | undefined
  #unread = 0
  /** The user's latest seq at auth: anything newer is new (and counts as unread). */
  #latestAtAuth = 0
  /** The error that stopped the client for good. */
  #fatal: BelfryError | undefined

  constructor(options: ClientOptions) {
    this.#o = resolveClientOptions(options)
    this.#link = new Link(this.#o, {
      status: (e) => this.#status(e),
      auth: (token) => this.#auth(token),
      online: (f) => this.#online(f),
      frame: (f) => this.#frame(f),
      error: (e) => {
        if (e.name === 'AuthError') this.#fatal = e
        this.#report(e)
      },
    })
    this.#requests = createRequests((text) => this.#link.send(text), this.#o.requestTimeout, this.#o.maxQueue)
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof ClientEvents<Data>>(type: K, handler: (event: ClientEvents<Data>[K]) => void): () => void {
    return this.#events.on(type, handler)
  }

  /** The connection state. */
  get state(): ConnectionState {
    return this.#link.state
  }

  /** Unread notifications in the user's inbox, as the server last said. */
  get unreadCount(): number {
    return this.#unread
  }

  /** Starts connecting. Safe to call twice. */
  connect(): this {
    this.#link.connect()
    return this
  }

  /** Resolves once online; rejects (with the error that stopped it, if any) when the client closes first. */
  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.state === 'online') resolve()
        else if (this.state === 'closed') reject(this.#fatal ?? new RequestError('closed'))
        else return
        off()
      }
      const off = this.on('status', check)
      check()
    })
  }

  /** One page of the user's history, newest first. */
  history(page: { before?: number; limit?: number } = {}): Promise<HistoryPage<Data>> {
    return this.#request({ type: 'history', ...page })
  }

  /** Marks notifications read, on every tab and device of the user. */
  markRead(ids: string | string[]): Promise<ReadEvent> {
    return this.#mark({ ids: typeof ids === 'string' ? [ids] : ids })
  }

  /** Marks every notification read. */
  markAllRead(): Promise<ReadEvent> {
    return this.#mark({ all: true })
  }

  /** Subscribes to a topic, now and after every reconnect; returns the function that unsubscribes. */
  subscribe(topic: string): () => void {
    this.#topics.add(topic)
    // Offline, #online sends it with every other topic; queueing it as well would send it twice.
    this.#send({ type: 'subscribe', topic })
    return () => {
      if (this.#topics.delete(topic)) this.#request({ type: 'unsubscribe', topic }).catch(this.#report)
    }
  }

  /** Closes for good: the socket, every timer and listener. Safe to call twice. */
  close(): void {
    if (this.state === 'closed') return
    this.#sendAck()
    this.#link.close()
  }

  readonly #report = (e: BelfryError) => this.#events.emit('error', e)

  async #mark(what: { ids: string[] } | { all: true }): Promise<ReadEvent> {
    return this.#read(await this.#request<ReadFrame>({ type: 'mark_read', ...what }))
  }

  /** Replies resolve as the frame itself (its `type` and `requestId` ride along). */
  async #request<T>(frame: { type: string } & Record<string, unknown>): Promise<T> {
    if (this.state === 'closed' || this.#link.legacy) throw new RequestError(this.#link.legacy ? 'not supported by this server' : 'closed')
    return this.#requests.request(frame) as T
  }

  #status(e: StatusEvent): void {
    // A pending ack goes with the connection; the next auth schedules it again.
    if (e.from === 'online') this.#ackTimer = void clearTimeout(this.#ackTimer)
    this.#events.emit('status', e)
    if (e.to === 'closed') {
      this.#requests.rejectAll(this.#fatal ?? new RequestError('closed'))
      this.#events.clear()
    }
  }

  /** The auth frame's extras. `userId` (the token's `sub`) is what the article's server files sockets under. */
  #auth(token: string): { since: number; userId?: string } {
    const userId = subject(token)
    const key = `belfry:cursor:${userId}`
    let stored = 0
    try {
      stored = Number(this.#o.storage.getItem(key)) || 0
    } catch {}
    // For one user the cursor in memory is authoritative; storage carries it across reloads.
    // A token for another user (or the first) starts from that user's stored cursor.
    if (key === this.#cursorKey) {
      this.#cursor = Math.max(this.#cursor, stored)
    } else {
      this.#cursorKey = key
      this.#cursor = stored
      this.#acked = 0 // the stored cursor may never have been acked: ack it once online
    }
    // Always a `since` (0: no cursor): a server takes a client without one for the article's, which does not ack.
    return { ...(userId && { userId }), since: this.#cursor }
  }

  /** Runs as the link goes online, before the app hears of it: waiting requests first, then topics. */
  #online(f: AuthSuccessFrame): void {
    if (this.#link.legacy) {
      this.#requests.rejectAll(new RequestError('not supported by this server'))
    } else {
      this.#requests.flush()
      // The server knows less than we do: it is another database. Start over from its numbering.
      if (f.seq < this.#cursor) {
        this.#acked = f.seq
        this.#setCursor(f.seq)
      }
      this.#latestAtAuth = f.seq
      this.#setUnread(f.unreadCount)
      for (const topic of this.#topics) this.#send({ type: 'subscribe', topic })
      // Delivered before the last drop but not yet acked: `since` is no ack on the server.
      if (this.#cursor > this.#acked) this.#scheduleAck()
    }
  }

  #frame(f: ServerFrame): void {
    this.#requests.settle(f)
    switch (f.type) {
      case 'notification':
        this.#deliver(f as NotificationFrame<Data>)
        return
      case 'replayed':
        // More is waiting: page through it before going live.
        if (f.more) this.#send({ type: 'resume', since: this.#cursor })
        return
      case 'read':
        if (f.requestId === undefined) this.#read(f) // a change made elsewhere; our own resolve #mark
        return
      case 'error':
        if (f.requestId === undefined) this.#report(new ProtocolError(f.message, { code: f.code }))
        return
    }
  }

  #deliver({ type: _, ...n }: NotificationFrame<Data>): void {
    if (this.#link.legacy) {
      // The article's server sends no id, seq or read state: nothing to resume or dedupe by.
      this.#events.emit('notification', Object.assign({ id: '', seq: 0, read: false, priority: 'medium' as const }, n))
      return
    }
    if (n.seq === undefined) {
      this.#report(new ProtocolError('notification without seq'))
      return
    }
    if (n.seq <= this.#cursor) return // a duplicate: already handed to the app
    this.#setCursor(n.seq)
    if (n.seq > this.#latestAtAuth && !n.read) this.#setUnread(this.#unread + 1)
    this.#scheduleAck() // first: a handler may close the client
    this.#events.emit('notification', n)
  }

  #scheduleAck(): void {
    this.#ackTimer ??= setTimeout(() => this.#sendAck(), this.#o.ackDelay)
  }

  /** One cumulative ack for everything delivered since the last. */
  #sendAck(): void {
    this.#ackTimer = void clearTimeout(this.#ackTimer)
    if (this.#cursor > this.#acked && this.#send({ type: 'ack', seq: this.#cursor })) this.#acked = this.#cursor
  }

  #send(frame: object): boolean {
    return this.#link.send(JSON.stringify(frame))
  }

  #setCursor(seq: number): void {
    this.#cursor = seq
    try {
      this.#o.storage.setItem(this.#cursorKey, String(seq))
    } catch {}
  }

  #setUnread(count: number): void {
    if (count === this.#unread) return
    this.#unread = count
    this.#events.emit('unread', { count })
  }

  #read(f: ReadFrame): ReadEvent {
    this.#setUnread(f.unreadCount)
    this.#events.emit('read', f)
    return f
  }
}
