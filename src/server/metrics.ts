import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { CloseCode } from '../protocol/index.js'
import { type Audience, IdempotencyKeyReusedError, STORE_OPERATIONS, type Store } from './store/store.js'

/**
 * Prometheus metrics of one server, served on `GET /metrics` when enabled.
 *
 * Each server has its own registry: several servers may share a process (the
 * tests do), and an app's own metrics stay the app's. Counters are incremented
 * where things happen (`hub.metrics?.…`: nothing at all when metrics are off).
 * Those on the hot path (a delivery, a replayed notification) are a plain
 * number each ({@link Tally}), handed to prom-client only when scraped:
 * prom-client's own `inc()` makes an object per call. Gauges are read when
 * scraped.
 *
 * Every label takes its values from a fixed set, written out below: never a
 * user id, a topic or a string a client sent. Every labelled series exists
 * from the start (at 0), so the number of series never grows with use, and a
 * rate is defined from the first scrape.
 */
export interface Metrics {
  /** WebSocket upgrades accepted. */
  readonly connects: Tally
  /** Connections that authenticated. */
  readonly authentications: Tally
  /** Notifications sent live to a connection (not in a replay round). */
  readonly deliveries: Tally
  /** Inbox entries this process wrote: by publishes and fan-out batches. */
  readonly inboxEntries: Tally
  /** Replay rounds that read the store. */
  readonly replayRounds: Tally
  /** Notifications sent in replay rounds. */
  readonly replayed: Tally
  readonly slowConsumerCuts: Tally
  /** Connections closed for exceeding their user's frame budget (4029). */
  readonly rateLimitCuts: Tally
  /** Broker publishes that failed. */
  readonly brokerErrors: Tally
  /** Broker events of another deployment, dropped. */
  readonly foreignEvents: Tally
  /** A socket closed: with the code the server sent, or else the one the client sent (1006 when none came). */
  closed(code: number): void
  /** The server closed a socket that had not authenticated, with `code`. */
  refused(code: number): void
  /** A publish committed after `seconds`, writing `entries` inbox entries itself (a fan-out job writes the rest). */
  published(audience: Audience, entries: number, seconds: number): void
  /** Times the store's operations. */
  timeStore(store: Store): Store
  /** The text format, and its content type. */
  scrape(): Promise<{ type: string; text: string }>
  /** Stops the event-loop monitor. */
  stop(): void
}

/** A counter without labels, as cheap as a number: served by the prom-client counter it was made for. */
export class Tally {
  n = 0
  inc(by = 1): void {
    this.n += by
  }
}

/** What the gauges read at each scrape. */
export interface MetricsSource {
  stats(): { users: number; connections: number; sockets: number; unauthenticated: number }
  brokerUp(): boolean
}

/**
 * Close codes counted under their own label: belfry's; 1002, 1007 and 1008 (those ws sends for a frame it
 * refuses: not a frame, not UTF-8, too many fragments); and 1005 and 1006 (a close without a code, without
 * a close frame). Any other is `other`: a client may close with any code from 3000 to 4999.
 */
const CLOSE_CODES: ReadonlySet<number> = new Set([...Object.values(CloseCode), 1002, 1005, 1006, 1007, 1008].sort((a, b) => a - b))

/** Why a socket was refused before auth, by the code it was closed with. */
const REFUSALS: Readonly<Record<number, string>> = {
  [CloseCode.TokenInvalid]: 'token_invalid',
  [CloseCode.TokenExpired]: 'token_expired',
  [CloseCode.Forbidden]: 'forbidden',
  [CloseCode.RateLimited]: 'too_many_connections',
  [CloseCode.AuthTimeout]: 'timeout',
  [CloseCode.TooLarge]: 'bad_frames',
  [CloseCode.ProtocolViolation]: 'bad_frames',
  1002: 'bad_frames',
  1007: 'bad_frames',
  1008: 'bad_frames',
}
const REFUSAL_REASONS = [...new Set(Object.values(REFUSALS)), 'other']

const KINDS = ['user', 'users', 'topic', 'broadcast'] as const
type Kind = (typeof KINDS)[number]
const kindOf = (a: Audience): Kind => ('userIds' in a ? (a.userIds.length === 1 ? 'user' : 'users') : 'topic' in a ? 'topic' : 'broadcast')

/** A store operation, timed with its name as the label value (`close` is not timed). */
type Operation = (typeof STORE_OPERATIONS)[number]

/** Seconds: from a SQLite read (well under a millisecond) to a PostgreSQL publish under load. */
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** How often the event loop's delay is sampled. */
const LOOP_RESOLUTION_MS = 10

export function createMetrics(source: MetricsSource): Metrics {
  const registry = new Registry()
  const registers = [registry]
  /** A counter of its own, read from a {@link Tally} at each scrape. */
  const counter = (name: string, help: string) => {
    const tally = new Tally()
    const served: Counter = new Counter({
      name: `belfry_${name}`,
      help,
      registers,
      collect() {
        served.reset()
        served.inc(tally.n)
      },
    })
    return tally
  }
  const gauge = (name: string, help: string) => new Gauge({ name: `belfry_${name}`, help, registers })
  /** A counter with one label, every value of it at 0. */
  const labelled = <L extends string>(name: string, help: string, label: L, values: readonly string[]) => {
    const c = new Counter<L>({ name: `belfry_${name}`, help, labelNames: [label], registers })
    for (const v of values) c.inc({ [label]: v } as Record<L, string>, 0)
    return c
  }
  /** A histogram of seconds with one label, every value of it at 0. */
  const timing = <L extends string>(name: string, help: string, label: L, values: readonly string[]) => {
    const h = new Histogram<L>({ name: `belfry_${name}`, help, labelNames: [label], buckets: BUCKETS, registers })
    for (const v of values) h.zero({ [label]: v } as Record<L, string>)
    return h
  }

  // Registered in the order they are served: connections, publishes and delivery, replay, cuts, broker, store, event loop.
  const sockets = gauge('open_sockets', 'Open WebSockets, authenticated or not.')
  const connections = gauge('open_connections', 'Authenticated connections.')
  const users = gauge('connected_users', 'Users with at least one authenticated connection to this process.')
  const unauthenticated = gauge('unauthenticated_sockets', 'Sockets waiting for their auth frame, or refused and still closing.')
  const connects = counter('connects_total', 'WebSocket connections accepted.')
  const authentications = counter('authentications_total', 'Connections that authenticated.')
  const authFailures = labelled(
    'auth_failures_total',
    'Sockets the server closed before they authenticated, by reason.',
    'reason',
    REFUSAL_REASONS,
  )
  const closes = labelled(
    'closes_total',
    "Sockets closed, by close code (the server's, else the client's; 1006: no close frame).",
    'code',
    [...[...CLOSE_CODES].map(String), 'other'],
  )

  const publishes = labelled('publishes_total', 'Publishes committed, by audience.', 'kind', KINDS)
  const publishSeconds = timing('publish_commit_seconds', 'From a publish to its commit in the store, by audience.', 'kind', KINDS)
  const inboxEntries = counter('inbox_entries_total', 'Inbox entries this process wrote (publishes and fan-out batches).')
  const deliveries = counter('deliveries_total', 'Notifications sent live to a connection.')

  const replayRounds = counter('replay_rounds_total', "Replay rounds: reads of a user's inbox after a cursor.")
  const replayed = counter('replayed_notifications_total', 'Notifications sent in replay rounds.')

  const slowConsumerCuts = counter('slow_consumer_cuts_total', 'Connections cut off for a send buffer over maxBufferedBytes (4009).')
  const rateLimitCuts = counter('rate_limit_cuts_total', "Connections closed for exceeding their user's frame budget (4029).")

  const brokerUp = gauge('broker_up', '1 while the broker carries events both ways (to this process and from it), else 0.')
  const brokerErrors = counter('broker_errors_total', "Broker publishes that failed (the event reached this process's connections only).")
  const foreignEvents = counter(
    'broker_foreign_events_total',
    "Broker events of another deployment (stamped with another store's token), dropped: another deployment shares the channel.",
  )

  const storeSeconds = timing('store_operation_seconds', 'Store operations, by operation.', 'operation', STORE_OPERATIONS)
  const storeErrors = labelled('store_errors_total', 'Store operations that failed, by operation.', 'operation', STORE_OPERATIONS)

  const lagP99 = gauge('event_loop_lag_p99_seconds', "99th percentile of the event loop's delay since the previous scrape.")
  const lagMax = gauge('event_loop_lag_max_seconds', 'Longest delay of the event loop since the previous scrape.')

  // Samples the delay of a timer every LOOP_RESOLUTION_MS: each sample is that interval plus the lag.
  const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS })
  loop.enable()
  const lag = (ns: number) => Math.max(0, ns / 1e9 - LOOP_RESOLUTION_MS / 1000)

  /**
   * `run`, timed: the caller gets what the store returned, its own promise (no
   * promise wrapped around it, no extra turn before it settles), and the
   * timing is a callback on it. An app's store that returns a value, or
   * throws, at once is timed as it is.
   */
  const timed = (operation: Operation, run: (...args: unknown[]) => unknown) => {
    const seconds = storeSeconds.labels({ operation })
    const failed = storeErrors.labels({ operation })
    return (...args: unknown[]): unknown => {
      const started = performance.now()
      const done = () => seconds.observe((performance.now() - started) / 1000)
      // A key used for another request is the publisher's mistake (422), not the store's.
      const fail = (error: unknown) => {
        if (!(error instanceof IdempotencyKeyReusedError)) failed.inc()
        done()
      }
      let result: unknown
      try {
        result = run(...args)
      } catch (error) {
        fail(error)
        throw error
      }
      if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') (result as PromiseLike<unknown>).then(done, fail)
      else done()
      return result
    }
  }

  return {
    connects,
    authentications,
    deliveries,
    inboxEntries,
    replayRounds,
    replayed,
    slowConsumerCuts,
    rateLimitCuts,
    brokerErrors,
    foreignEvents,
    closed: (code) => closes.inc({ code: CLOSE_CODES.has(code) ? String(code) : 'other' }),
    refused: (code) => {
      // Closed by shutdown, not refused.
      if (code !== CloseCode.GoingAway) authFailures.inc({ reason: REFUSALS[code] ?? 'other' })
    },
    published(audience, entries, seconds) {
      const kind = kindOf(audience)
      publishes.inc({ kind })
      inboxEntries.inc(entries)
      publishSeconds.observe({ kind }, seconds)
    },
    timeStore(store) {
      // The server calls a store only through the Store interface: an object of its methods, each bound to
      // the store (which may keep private fields) and the operations timed. A plain object, not a proxy:
      // an ack looks its method up as fast as on the store itself.
      const methods: Record<string, unknown> = { close: store.close.bind(store) }
      for (const operation of STORE_OPERATIONS) {
        const method = store[operation] as ((...args: unknown[]) => unknown) | undefined
        // A method an app's store lacks stays missing (the server's options check refuses such a store).
        if (typeof method === 'function') methods[operation] = timed(operation, method.bind(store))
      }
      return methods as unknown as Store
    },
    async scrape() {
      const s = source.stats()
      sockets.set(s.sockets)
      connections.set(s.connections)
      users.set(s.users)
      unauthenticated.set(s.unauthenticated)
      brokerUp.set(source.brokerUp() ? 1 : 0)
      // With no sample yet (a scrape right after the previous one) both are 0.
      lagP99.set(lag(loop.percentile(99)))
      lagMax.set(lag(loop.max))
      loop.reset()
      return { type: registry.contentType, text: await registry.metrics() }
    },
    stop: () => loop.disable(),
  }
}
