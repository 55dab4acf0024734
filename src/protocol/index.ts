export { CloseCode, parseRetryReason, retryReason } from './close-codes.js'
export type * from './frames.js'
export { ErrorCode } from './frames.js'
export type { Parsed } from './parse.js'
export {
  isNotificationLike,
  MAX_HISTORY_LIMIT,
  MAX_ID_LENGTH,
  MAX_IDS_PER_FRAME,
  MAX_TOPIC_LENGTH,
  parseClientFrame,
  parseServerFrame,
} from './parse.js'
