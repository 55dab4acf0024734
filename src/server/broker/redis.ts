import { Redis, type RedisOptions } from 'ioredis'
import { type Logger, pino } from 'pino'
import { LOGGER_METHODS, MAX_TIMER_MS, requireMethods, shown } from '../options.js'
import { redact } from '../redact.js'
import type { Broker, BrokerEvent } from './broker.js'

/** Options of {@link RedisBroker.connect}. */
export interface RedisBrokerOptions {
  /** The Redis channel every server process of one deployment shares. @default 'belfry:events' */
  channel?: string | undefined
  /** Where connection changes and dropped messages are logged. @default a pino logger at level 'info' */
  logger?: Logger | undefined
  /** How long the first connection may take before `connect` gives up, in ms. @default 5000 */
  connectTimeout?: number | undefined
}

/** Reconnection backoff once the first connection has succeeded: 100 ms more per attempt, never more than 2 s. */
const backoff = (attempt: number): number => Math.min(attempt * 100, 2000)

/**
 * How often both connections are checked (a PING each), in ms. A connection
 * can go silent without closing (a network partition: no FIN, no RST); only
 * a question it leaves unanswered shows it.
 */
export const PROBE_MS = 1000
/** How long a PING may go unanswered before its connection counts as lost, in ms. Generous: a busy event loop reads replies late. */
export const PROBE_TIMEOUT_MS = 2000
/** How long a publish may wait for Redis before it counts as failed (the server then delivers to its own connections), in ms. */
export const PUBLISH_TIMEOUT_MS = 1000
/**
 * How long `close` waits for Redis to answer a QUIT before it drops the
 * connection, in ms. A connection can still say `ready` for a while into a
 * partition (until a PING goes unanswered), and the subscriber's commands
 * have no timeout of their own: shutdown must not wait for TCP to give up.
 */
const QUIT_TIMEOUT_MS = 1000

/**
 * A broker over Redis pub/sub, for several server processes sharing one store.
 * Each publish call is one PUBLISH of a JSON array on one channel; every
 * process subscribed to the channel hands the events to its subscribers.
 *
 * Redis pub/sub is at most once, which is what the broker rules ask for: the
 * store is the truth. While either connection is lost `up` is false and
 * `onStatus` says so: without the subscriber this process misses the events
 * of every process, without the publisher every process misses this one's
 * (`publish` rejects at once, and the server delivers to its own connections
 * only). `onStatus(true)` comes once the publisher is connected and the
 * subscriber's subscription is confirmed again; the server then reads the
 * store for what it missed, and tells the other processes to read it for
 * what they missed of its publishes (a catch-up event).
 *
 * @example
 * const broker = await RedisBroker.connect('redis://127.0.0.1:6379')
 * const server = new NotificationServer({ secret, broker, store })
 */
export class RedisBroker implements Broker {
  readonly #pub: Redis
  readonly #sub: Redis
  readonly #channel: string
  readonly #log: Logger
  readonly #handlers = new Set<(event: BrokerEvent) => void>()
  readonly #statusHandlers = new Set<(up: boolean) => void>()
  /** Both connections work: the publisher is connected and the subscriber subscribed (see {@link #update}). */
  #up = true
  /** The subscriber's SUBSCRIBE is confirmed on its current connection. */
  #subscribed = true
  #closed = false
  /** Bumped on every loss of the subscriber connection, so a SUBSCRIBE confirmed for an older connection cannot count as subscribed. */
  #epoch = 0
  /** A SUBSCRIBE waits for its confirmation. */
  #subscribing = false
  /** A probe waits for its PINGs. */
  #probing = false
  readonly #probe: NodeJS.Timeout

  private constructor(pub: Redis, sub: Redis, channel: string, log: Logger) {
    this.#pub = pub
    this.#sub = sub
    this.#channel = channel
    this.#log = log
    sub.on('message', (ch: string, message: string) => {
      if (ch === channel) this.#deliver(message)
    })
    // 'close' comes first when a live connection drops; 'end' and 'reconnecting' are listened to as well so
    // that whichever ioredis emits first marks the broker down (each after the first is a no-op).
    for (const event of ['close', 'end', 'reconnecting']) {
      sub.on(event, () => this.#unsubscribed())
      // A publisher that cannot reconnect (Redis at its maxclients, an ACL change) leaves the subscriber
      // subscribed: every publish of this process misses the other processes all the same.
      pub.on(event, () => this.#update('publisher'))
    }
    // ioredis's own resubscription (autoResubscribe) is off: it is sent after 'ready' without a way to wait for
    // its confirmation. This subscribes itself on each 'ready' and reports `up` only once Redis confirms.
    sub.on('ready', () => void this.#resubscribe())
    pub.on('ready', () => this.#update('publisher'))
    this.#probe = setInterval(() => void this.#check(), PROBE_MS).unref()
  }

  /**
   * Connects to Redis (one connection to publish, one in subscribe mode) and
   * resolves once subscribed to the channel. Rejects with a one-line message
   * if Redis cannot be reached, without retrying and without leaving
   * connections or timers behind; once connected, it reconnects forever.
   *
   * @param url A Redis URL, e.g. `redis://:password@host:6379/0`.
   */
  static async connect(url: string, options: RedisBrokerOptions = {}): Promise<RedisBroker> {
    const { channel, log, deadline } = checked(url, options)
    let pub: Redis | undefined
    let sub: Redis | undefined
    let timer: NodeJS.Timeout | undefined
    try {
      // In here: a URL ioredis cannot parse (a port past 65535) is told as Redis's, as a refused connection is.
      pub = open(url, log, 'publisher', 5000)
      sub = open(url, log, 'subscriber')
      const [p, s] = [pub, sub]
      await Promise.race([
        Promise.all([start(p), start(s).then(() => s.subscribe(channel))]),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${deadline} ms`)), deadline)
        }),
      ])
    } catch (error) {
      // Not QUIT: a server that does not answer would not answer that either.
      await Promise.all([pub && shut(pub, true), sub && shut(sub, true)])
      throw new Error(`cannot reach Redis at ${redact(url)}: ${describe(error)}`)
    } finally {
      clearTimeout(timer)
    }
    log.info({ channel }, 'redis broker: subscribed')
    return new RedisBroker(pub, sub, channel, log)
  }

  /**
   * Whether events cross between this process and the others, both ways: the
   * subscriber connection is subscribed (events reach this process) and the
   * publisher connection is connected (this process's events reach the others).
   */
  get up(): boolean {
    return this.#up
  }

  /**
   * Publishes the events as one Redis message (a fan-out batch is one call, so
   * one message). Rejects at once while Redis cannot be reached: nothing is
   * queued, since the server delivers to its own connections instead.
   */
  async publish(events: readonly BrokerEvent[]): Promise<void> {
    if (this.#closed) throw new Error('redis broker: closed')
    // ioredis would reject too (no offline queue), but in words of its options.
    if (this.#pub.status !== 'ready') throw new Error(`redis broker: publish failed: not connected to Redis (${this.#pub.status})`)
    try {
      await within(this.#pub.publish(this.#channel, JSON.stringify(events)), PUBLISH_TIMEOUT_MS)
    } catch (error) {
      if (error instanceof Unanswered) this.#lost('publish')
      throw new Error(`redis broker: publish failed: ${describe(error)}`, { cause: error })
    }
  }

  /** Registers a handler for every event on the channel, from any process; returns its remover. */
  subscribe(handler: (event: BrokerEvent) => void): () => void {
    this.#handlers.add(handler)
    return () => this.#handlers.delete(handler)
  }

  /**
   * Resolves at once while subscribed (`connect` resolves only once it is).
   * Rejects once closed, and while the connection is lost: Redis cannot be
   * reached then, and waiting could be forever.
   */
  async ready(): Promise<void> {
    if (this.#closed) throw new Error('redis broker: closed')
    if (!this.#up) throw new Error('redis broker: the connection to Redis is lost; reconnecting')
  }

  /**
   * Registers a handler told `false` when either connection is lost and `true`
   * once the publisher is connected and the subscriber subscribed again; returns its remover.
   */
  onStatus(handler: (up: boolean) => void): () => void {
    this.#statusHandlers.add(handler)
    return () => this.#statusHandlers.delete(handler)
  }

  /** Quits both connections and stops reconnecting. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#up = false
    clearInterval(this.#probe)
    this.#handlers.clear()
    this.#statusHandlers.clear()
    await Promise.all([shut(this.#pub), shut(this.#sub)])
  }

  #deliver(message: string): void {
    let events: unknown
    try {
      events = JSON.parse(message)
    } catch {
      events = undefined
    }
    if (!Array.isArray(events) || !events.every(isEvent)) {
      // Anyone with access to Redis can publish on the channel: a stray message must not take the server down.
      this.#log.warn({ channel: this.#channel, message: message.slice(0, 200) }, 'redis broker: dropped a malformed message')
      return
    }
    for (const event of events)
      for (const handler of this.#handlers) {
        // One failing handler must not keep the event from the others, nor surface in ioredis's event loop.
        try {
          handler(event)
        } catch (error) {
          this.#log.error({ err: loggable(error) }, 'redis broker: event handler threw')
        }
      }
  }

  /** The subscriber connection is lost: its subscription is gone, and one confirmed later for this connection does not count. */
  #unsubscribed(): void {
    this.#epoch++
    this.#subscribed = false
    this.#update('subscriber')
  }

  /** Sets `up` from both connections' state, and tells the status handlers if it changed. */
  #update(connection: 'publisher' | 'subscriber'): void {
    if (this.#closed) return
    const up = this.#subscribed && this.#pub.status === 'ready'
    if (up === this.#up) return
    this.#up = up
    if (up) this.#log.info({ channel: this.#channel }, 'redis broker: back (publisher connected, subscriber subscribed)')
    else this.#log.warn({ channel: this.#channel, connection }, 'redis broker: connection lost; reconnecting')
    this.#status(up)
  }

  /**
   * One probe tick: PINGs each live connection (a SUBSCRIBE waiting for its
   * confirmation included). One left unanswered is a connection lost without
   * a close: both are dropped and reconnect, and `up` is false until both
   * are back. A live subscriber that is not subscribed (its SUBSCRIBE
   * failed) subscribes again.
   */
  async #check(): Promise<void> {
    if (this.#closed || this.#probing) return
    if (!this.#subscribed && !this.#subscribing && this.#sub.status === 'ready') void this.#resubscribe()
    const live = [this.#sub, this.#pub].filter((redis) => redis.status === 'ready')
    if (live.length === 0) return
    this.#probing = true
    try {
      await Promise.all(live.map((redis) => within(redis.ping(), PROBE_TIMEOUT_MS)))
    } catch (error) {
      // A connection that closes meanwhile says so itself ('close'); one that stays silent does not.
      if (error instanceof Unanswered) this.#lost('ping')
    } finally {
      this.#probing = false
    }
  }

  /** Redis left a question unanswered: the connections are dropped, and reconnect. */
  #lost(what: string): void {
    if (this.#closed) return
    this.#log.warn({ channel: this.#channel, unanswered: what }, 'redis broker: Redis does not answer; reconnecting')
    this.#unsubscribed()
    this.#pub.disconnect(true)
    this.#sub.disconnect(true)
  }

  async #resubscribe(): Promise<void> {
    const epoch = this.#epoch
    this.#subscribing = true
    try {
      await this.#sub.subscribe(this.#channel)
    } catch (error) {
      // The connection dropped again before the confirmation (the next 'ready' tries again), or Redis
      // refused it on a live one (the next probe tick tries again).
      this.#log.debug({ err: loggable(error) }, 'redis broker: resubscribe failed')
      return
    } finally {
      this.#subscribing = false
    }
    if (this.#closed || this.#subscribed || epoch !== this.#epoch) return
    this.#subscribed = true
    this.#log.info({ channel: this.#channel }, 'redis broker: subscribed again')
    this.#update('subscriber')
  }

  #status(up: boolean): void {
    for (const handler of this.#statusHandlers) {
      try {
        handler(up)
      } catch (error) {
        this.#log.error({ err: loggable(error) }, 'redis broker: status handler threw')
      }
    }
  }
}

/** {@link RedisBroker.connect}'s arguments with their defaults, or a TypeError that names the bad one (before anything connects). */
function checked(url: unknown, options: RedisBrokerOptions): { channel: string; log: Logger; deadline: number } {
  if (typeof url !== 'string' || url === '') throw new TypeError(`RedisBroker.connect: url must be a Redis URL string; got ${shown(url)}`)
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`RedisBroker.connect: options must be an object; got ${shown(options)}`)
  const { channel = 'belfry:events', logger, connectTimeout: deadline = 5000 } = options
  if (typeof channel !== 'string' || channel === '') {
    throw new TypeError(`RedisBroker.connect: options.channel must be a non-empty string; got ${shown(channel)}`)
  }
  requireMethods(logger, 'RedisBroker.connect: options.logger', LOGGER_METHODS)
  if (!Number.isSafeInteger(deadline) || deadline < 1 || deadline > MAX_TIMER_MS) {
    throw new TypeError(
      `RedisBroker.connect: options.connectTimeout must be a whole number of ms from 1 to ${MAX_TIMER_MS}; got ${shown(deadline)}`,
    )
  }
  return { channel, log: logger ?? pino(), deadline }
}

/**
 * A connection that does not connect until `start`, and retries only once it
 * has connected. `commandTimeout`: how long a command may wait (the
 * publisher's, so that a half-open socket cannot hang `publish`); the
 * subscriber's SUBSCRIBE waits for Redis's confirmation however late it comes,
 * or for the connection's loss, which the probe's PINGs find out.
 */
function open(url: string, log: Logger, role: string, commandTimeout?: number): Redis {
  let connected = false
  const options: RedisOptions = {
    lazyConnect: true,
    // Before the first success a failure is final (connect rejects); after it, retry forever with backoff.
    retryStrategy: (attempt) => (connected ? backoff(attempt) : null),
    // Reject commands while disconnected instead of queueing them, and reject those in flight when the
    // connection drops instead of resending them: the broker is at most once, the store is the truth.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    autoResubscribe: false,
    ...(commandTimeout !== undefined && { commandTimeout }),
    // When ioredis disconnects a socket it ends it and destroys it after this delay if it is still open. The
    // broker only disconnects sockets it has given up on (QUIT closes the live ones), so at once it is.
    disconnectTimeout: 0,
  }
  const redis = new Redis(url, options)
  redis.once('ready', () => {
    connected = true
  })
  // Without a listener ioredis prints each error itself. Every failed reconnection attempt emits one, and
  // the loss of the connection is logged once by the broker, so these are debug.
  redis.on('error', (error: Error) => log.debug({ err: loggable(error), role }, 'redis broker: connection error'))
  return redis
}

/** Connects; rejects with the underlying cause (ioredis itself only says "Connection is closed."). */
async function start(redis: Redis): Promise<void> {
  let cause: unknown
  const remember = (error: unknown) => {
    cause ??= error
  }
  redis.on('error', remember)
  try {
    await redis.connect()
  } catch (error) {
    throw cause ?? error
  } finally {
    redis.off('error', remember)
  }
}

/**
 * Quits a connection (or, with `force`, drops it), waiting until its socket is
 * closed; just stops reconnecting if it has none. A QUIT left unanswered for
 * {@link QUIT_TIMEOUT_MS} (Redis went silent, and the probe has not noticed
 * yet) drops the connection too.
 */
async function shut(redis: Redis, force = false): Promise<void> {
  if (redis.status === 'end') return
  if (redis.status === 'reconnecting' || redis.status === 'wait' || redis.status === 'close') {
    // No socket is open: this clears the reconnection timer, and no 'end' follows. ioredis still arms its
    // disconnectTimeout timer to destroy the closed socket (0 ms, see `open`): wait it out, so that nothing
    // keeps the process alive once `close` resolves (same-delay timers fire in the order they were set).
    redis.disconnect()
    await new Promise((resolve) => setTimeout(resolve, 1))
    return
  }
  const ended = new Promise((resolve) => redis.once('end', resolve))
  if (redis.status === 'ready' && !force) await within(redis.quit(), QUIT_TIMEOUT_MS).catch(() => redis.disconnect())
  else redis.disconnect()
  await ended
}

/** A command Redis did not answer in time. */
class Unanswered extends Error {}

/**
 * `command`, or an {@link Unanswered} rejection after `ms`. The verdict waits
 * for the I/O of the turn in which the timer fires: after a stalled event loop
 * the timer runs before the reply that came meanwhile is read.
 */
async function within<T>(command: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      command,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => setImmediate(() => reject(new Unanswered(`no answer from Redis within ${ms} ms`))), ms)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

function isEvent(value: unknown): value is BrokerEvent {
  if (typeof value !== 'object' || value === null) return false
  const event = value as Record<string, unknown>
  if (!(event.deployment === undefined || typeof event.deployment === 'string')) return false
  if (event.kind === 'notification') {
    const { catchUp } = event
    const users = catchUp === undefined || catchUp === 'all' || (Array.isArray(catchUp) && catchUp.every((id) => typeof id === 'string'))
    return typeof event.shared === 'string' && Array.isArray(event.deliveries) && users
  }
  if (event.kind === 'read') return typeof event.userId === 'string' && typeof event.frame === 'string'
  return false
}

/**
 * An error as the log may show it: a copy (same class, message, stack, code)
 * whose `command` is the command's name only. ioredis attaches the failed
 * command to its errors, `command: { name, args }`, and the arguments of an
 * AUTH are the password. Causes and an AggregateError's errors are copied alike.
 */
function loggable(error: unknown): unknown {
  if (!(error instanceof Error)) return error
  const { command, cause } = error as { command?: unknown; cause?: unknown }
  const fields: PropertyDescriptorMap = Object.getOwnPropertyDescriptors(error)
  // Each replaced as a plain value, whatever its descriptor was (a getter, read-only): the copy is the log's.
  const value = (key: string, v: unknown) => {
    if (key in fields) fields[key] = { value: v, writable: true, configurable: true, enumerable: fields[key]!.enumerable ?? false }
  }
  value('stack', error.stack)
  value('command', typeof command === 'object' && command !== null && 'name' in command ? command.name : undefined)
  value('cause', loggable(cause))
  if (error instanceof AggregateError) value('errors', error.errors.map(loggable))
  return Object.create(Object.getPrototypeOf(error), fields)
}

/** One line for an error; Node's AggregateError (several addresses tried) has an empty message. */
function describe(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return error.errors.map(describe).join('; ')
  if (error instanceof Error) return (error.message || (error as NodeJS.ErrnoException).code || error.name).split('\n')[0]!
  return String(error)
}
