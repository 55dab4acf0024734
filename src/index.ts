/**
 * belfry's client entry point.
 */

export type { Json, JsonObject, Notification, Priority } from './protocol/index.js'
export { CloseCode, ErrorCode } from './protocol/index.js'
