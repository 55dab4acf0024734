import { type AuthFrame, CloseCode, ErrorCode, retryReason } from '../../protocol/index.js'
import { verifyToken } from '../auth.js'
import type { Connection } from './connection.js'

/**
 * The auth frame: verifies the token, checks the user and the user's
 * connection cap, signs the connection in, answers `auth_success` with the
 * user's latest seq and unread count, and starts the replay. Any refusal is
 * an `auth_error` followed by a close (docs/protocol.md, "Close codes").
 */
export async function authenticate(c: Connection, f: AuthFrame): Promise<void> {
  if (c.phase !== 'authenticating') {
    c.reject(ErrorCode.AlreadyAuthenticated, 'this connection is already authenticated')
    return
  }
  const { registry, limits, store, log, key } = c.hub
  const check = await verifyToken(f.token, key)
  if (c.closed) return
  if (!check.ok) {
    c.reply({ type: 'auth_error', code: check.expired ? ErrorCode.TokenExpired : ErrorCode.TokenInvalid, message: check.message })
    c.close(check.expired ? CloseCode.TokenExpired : CloseCode.TokenInvalid, check.message)
    return
  }
  if (f.userId !== undefined && f.userId !== check.userId) {
    c.reply({ type: 'auth_error', code: ErrorCode.Forbidden, message: 'userId does not match the token' })
    c.close(CloseCode.Forbidden, 'user mismatch')
    return
  }
  if (registry.count(check.userId) >= limits.maxConnectionsPerUser) {
    c.reply({ type: 'auth_error', code: ErrorCode.RateLimited, message: 'too many connections for this user' })
    c.close(CloseCode.RateLimited, retryReason('too many connections', 30_000))
    return
  }
  // No `since`: the article's client, which neither asks for the next round nor acks.
  c.signIn(check.userId, check.expiresAt, f.since === undefined)
  const user = await store.touchUser(check.userId)
  if (c.closed) return
  // `since: 0` (or none) is no cursor: everything after the user's acknowledged one.
  // A cursor beyond the latest seq comes from another database: start from the end.
  const since = Math.min(f.since || user.ackedSeq, user.latestSeq)
  c.reply({
    type: 'auth_success',
    message: 'Connected to notification service',
    userId: check.userId,
    seq: user.latestSeq,
    unreadCount: user.unreadCount,
  })
  log.debug({ conn: c.id, user: check.userId, since }, 'authenticated')
  return c.replay.start(since)
}
