import type { Logger } from 'pino'
import type { TokenVerifier } from './auth.js'
import type { Broker, BrokerEvent } from './broker/broker.js'
import type { Budgets } from './budget.js'
import type { Connection } from './connection/connection.js'
import type { Metrics } from './metrics.js'
import type { Limits, SubscribeAuthorizer } from './options.js'
import type { Registry } from './registry.js'
import type { Store } from './store/store.js'

/** What every connection of a server shares: the server's parts, made once. */
export interface Hub {
  readonly store: Store
  readonly broker: Broker
  /**
   * Hands committed changes to the broker, for every process, in one message
   * (each process takes them in one go, in order); when the broker fails, to
   * this process's connections directly (those of other processes read the
   * store). Never rejects.
   */
  announce(...events: BrokerEvent[]): Promise<void>
  /**
   * A connection sent read frames late (held for `auth_success` or a replay
   * round), after notifications their counts may lack: the user's connections
   * here are told the unread count and latest seq as the store has them now.
   * Never throws.
   */
  refreshReadState(userId: string): void
  /**
   * A connection of the user was told this seq and unread count (its
   * `auth_success`): the store reads that follow are compared with them, and a
   * read change made where this process did not hear of it is told.
   */
  sawUserState(userId: string, seq: number, unreadCount: number): void
  readonly registry: Registry
  /** Every open socket's connection, authenticated or not. */
  readonly connections: Set<Connection>
  /** Those still waiting for their auth frame, oldest first. */
  readonly unauthenticated: Set<Connection>
  readonly limits: Readonly<Limits>
  /** What each user may cost this process, shared by the user's connections. */
  readonly budgets: Budgets
  /** Decides topic subscriptions, when configured. */
  readonly authorizeSubscribe: SubscribeAuthorizer | undefined
  /** Checks user tokens against the server's secret. */
  readonly verify: TokenVerifier
  readonly log: Logger
  /** Counted only while metrics are on (`metrics` option). */
  readonly metrics?: Metrics | undefined
}
