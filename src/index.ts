/**
 * belfry: real-time notifications for web apps.
 *
 * @example
 * import { NotificationClient } from 'belfry'
 * const client = new NotificationClient({ url: 'wss://example.com/ws', token: () => fetchToken() })
 * client.on('notification', (n) => toast(n.title))
 * client.connect()
 */

export type { BackoffOptions } from './client/backoff.js'
export { fullJitter } from './client/backoff.js'
export { AuthError, BelfryError, ConnectionError, ProtocolError, RequestError, TimeoutError } from './client/errors.js'
export type { Connection, ConnectionFactory, ConnectionMode, ConnectionState, LinkHost, StatusEvent } from './client/link.js'
export type { ClientEvents, HistoryPage, ReadEvent } from './client/notification-client.js'
export { NotificationClient } from './client/notification-client.js'
export type { ClientOptions, Provider, ResolvedClientOptions, SocketEvent, SocketLike, WebSocketLike } from './client/options.js'
export type { CursorStorage } from './client/storage.js'
export { memoryStorage } from './client/storage.js'
export type { ClientFrame, ErrorCode, Json, JsonObject, Notification, Priority, ServerFrame } from './protocol/index.js'
