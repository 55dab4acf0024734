import { type AuthFrame, CloseCode, ErrorCode, retryReason } from '../../protocol/index.js'
import type { Connection } from './connection.js'
import { topicRefusal } from './requests.js'

/**
 * The auth frame: verifies the token, checks the user and the user's
 * connection cap, signs the connection in, takes its cursor as an ack,
 * answers `auth_success` with the user's latest seq, unread count and floor
 * (`oldestSeq`), and starts the replay. Any refusal is
 * an `auth_error` followed by a close (docs/protocol.md, "Close codes"),
 * logged at warn without the token.
 */
export async function authenticate(c: Connection, f: AuthFrame): Promise<void> {
  if (c.phase !== 'authenticating') {
    c.reject(ErrorCode.AlreadyAuthenticated, 'this connection is already authenticated')
    return
  }
  const { registry, limits, store, log, verify, authorizeSubscribe } = c.hub
  const check = verify(f.token)
  const refuse = (code: ErrorCode, close: number, message: string, reason = message) =>
    c.refuseAuth(code, close, message, reason, check.ok ? check.userId : undefined)
  if (!check.ok) {
    return refuse(
      check.expired ? ErrorCode.TokenExpired : ErrorCode.TokenInvalid,
      check.expired ? CloseCode.TokenExpired : CloseCode.TokenInvalid,
      check.message,
    )
  }
  if (f.userId !== undefined && f.userId !== check.userId) {
    return refuse(ErrorCode.Forbidden, CloseCode.Forbidden, 'userId does not match the token', 'user mismatch')
  }
  if (registry.count(check.userId) >= limits.maxConnectionsPerUser) {
    const reason = retryReason('too many connections', 30_000)
    return refuse(ErrorCode.RateLimited, CloseCode.RateLimited, 'too many connections for this user', reason)
  }
  // No `since`: the article's client, which neither asks for the next round nor acks.
  c.signIn(check.userId, check.expiresAt, f.since === undefined, authorizeSubscribe && check.claims)
  const user = await store.touchUser(check.userId)
  if (c.closed) return
  c.hub.sawUserState(check.userId, user.latestSeq, user.unreadCount)
  // Grants may have been revoked since the user subscribed: what this token no longer allows ends here.
  if (authorizeSubscribe) await recheckSubscriptions(c)
  if (c.closed) return
  // `since: 0` (or none) is no cursor: everything after the user's acknowledged one.
  // A cursor beyond the latest seq comes from another database: start from the end.
  // One below the floor: retention removed what followed it, the replay starts after the floor.
  const since = Math.max(user.floor, Math.min(f.since || user.ackedSeq, user.latestSeq))
  // A cursor is the client's word that it has everything up to it: an ack (one from this database).
  if (f.since && f.since <= user.latestSeq && since > user.ackedSeq) {
    const acked = user.ackedSeq
    store.ack(check.userId, since).catch((error: unknown) => {
      log.warn({ conn: c.id, err: error }, 'ack failed')
      c.cursorNotAcked(since, acked)
    })
  }
  // The answer and the replay's first round (or its end, with nothing to replay) in one write.
  c.cork()
  c.reply({
    type: 'auth_success',
    message: 'Connected to notification service',
    userId: check.userId,
    seq: user.latestSeq,
    unreadCount: user.unreadCount,
    oldestSeq: user.floor,
    pingAcks: true,
  })
  // None unread, to belfry's clients (a `since`, 0 too: one that was handed nothing yet may show history pages): each
  // marks read what it shows, which may have been read elsewhere while it was away (a read frame told only the
  // connections open then). The article's client (no `since`) has no read state.
  if (f.since !== undefined && !user.unreadCount && user.latestSeq) {
    c.reply({ type: 'read', ids: [], all: true, seq: user.latestSeq, unreadCount: 0 })
  }
  c.greeted()
  log.debug({ conn: c.id, user: check.userId, since }, 'authenticated')
  c.startsAfter(since)
  // A cursor beyond the latest seq was not taken as an ack: until something is sent, acks go no further than the user's.
  return c.replay.start(since, user.latestSeq, (f.since ?? 0) > user.latestSeq ? Math.min(since, user.ackedSeq) : since)
}

async function recheckSubscriptions(c: Connection): Promise<void> {
  const { store, log } = c.hub
  const userId = c.userId!
  const revoked: string[] = []
  // One the app's check failed for (`internal`) is kept: it was allowed when made, and ended on a failure
  // it would be lost for good; failing the auth would fail every auth while the check fails.
  for (const topic of await store.topics(userId)) {
    const code = await topicRefusal(c, topic)
    if (code && code !== ErrorCode.Internal) revoked.push(topic)
  }
  if (revoked.length === 0) return
  await store.unsubscribe(userId, revoked)
  log.info({ conn: c.id, user: userId, topics: revoked.length }, 'subscriptions no longer allowed were ended')
}
