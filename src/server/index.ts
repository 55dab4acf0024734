/**
 * belfry's reference server.
 *
 * @example
 * import { NotificationServer } from 'belfry-server'
 * const server = new NotificationServer({ secret: process.env.BELFRY_SECRET!, apiKey: process.env.BELFRY_API_KEY })
 * await server.listen(3000)
 */

// The protocol's types that the API above is written in (NotificationInput.data, Store's rows).
export type { Json, JsonObject, Notification, Priority } from '../protocol/index.js'
export { mintToken, type TokenCheck, type TokenVerifier, tokenVerifier, verifyToken } from './auth.js'
export type { Broker, BrokerEvent } from './broker/broker.js'
export { InProcessBroker } from './broker/broker.js'
export { RedisBroker, type RedisBrokerOptions } from './broker/redis.js'
export type { Health } from './http.js'
export { UnavailableError } from './http.js'
export type { PublishResult } from './notification-server.js'
export { NotificationServer } from './notification-server.js'
export type { Limits, Retention, ServerOptions, SubscribeAuthorizer } from './options.js'
export { DEFAULT_LIMITS } from './options.js'
export { PostgresStore, type PostgresStoreOptions } from './store/postgres.js'
export { SqliteStore, type SqliteStoreOptions } from './store/sqlite.js'
export type {
  Audience,
  Delivery,
  FanOutBatch,
  IdempotencyKey,
  NotificationInput,
  PruneBatch,
  Published,
  PublishOptions,
  ReadChange,
  RetentionRule,
  Store,
  StoredNotification,
  UnreadChange,
  UserState,
} from './store/store.js'
export { IdempotencyKeyReusedError } from './store/store.js'
export { topicsClaim } from './topics.js'
