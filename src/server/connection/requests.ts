import { isWellFormed } from '../../protocol/guards.js'
import {
  type AuthFrame,
  type ClientFrame,
  ErrorCode,
  type HistoryFrame,
  MAX_HISTORY_LIMIT,
  type MarkReadFrame,
  type RefusedTopic,
  type SubscribeFrame,
} from '../../protocol/index.js'
import type { BrokerEvent } from '../broker/broker.js'
import { frame, historyFrame, rid } from '../serialize.js'
import type { Connection } from './connection.js'

const DEFAULT_HISTORY_LIMIT = 20

/** The frames of an authenticated connection: acks, replay paging, read state, topics, history, ping. */
export async function handleFrame(c: Connection, f: Exclude<ClientFrame, AuthFrame>): Promise<void> {
  switch (f.type) {
    case 'ack': // before auth only: Connection.receive writes the others itself
      await c.ack(f.seq)
      return
    case 'resume':
      return c.replay.resume(f.since, f.requestId)
    case 'mark_read':
      return markRead(c, f)
    case 'subscribe':
      return subscribe(c, f)
    case 'unsubscribe':
      return unsubscribe(c, f)
    case 'history':
      return history(c, f)
    case 'ping':
      c.reply({ type: 'pong', ...rid(f.requestId) })
      return
  }
}

/** Marks read, answers, and tells the user's other connections (on every process) through the broker. */
async function markRead(c: Connection, f: MarkReadFrame): Promise<void> {
  const userId = c.userId!
  const {
    ids,
    all,
    seq,
    unreadCount,
    upTo = seq,
  } = await c.hub.budgets.oneAtATime(userId, () => c.hub.store.markRead(userId, f.all ? 'all' : (f.ids ?? []), f.seq))
  // The reply names every id asked for (none is unread now): a request sent again after a drop lost the first one's
  // reply finds them read already, and answers as the first would have. Other connections hear of those that changed.
  // A `read {all}` says by its seq what became read.
  c.reply({ type: 'read', ids: all ? ids : [...new Set(f.ids)], all, seq: upTo, unreadCount, ...rid(f.requestId) })
  // Bounded below the latest: its count covers the entries above the bound too, and says so in a frame at the
  // latest, as a change told through a shared broker does. No notification can come between the two.
  const count = upTo < seq ? frame({ type: 'read', ids: [], all: false, seq, unreadCount }) : undefined
  if (count) c.send(count)
  if (!all && ids.length === 0) return
  // Together: a process reads the user's state once for both, and the connection that made them is told neither again.
  const change: BrokerEvent = { kind: 'read', userId, origin: c.id, frame: frame({ type: 'read', ids, all, seq: upTo, unreadCount }) }
  await (count ? c.hub.announce(change, { ...change, frame: count }) : c.hub.announce(change))
}

/** Why the user may not subscribe to `topic`, if it may not: too long, text no store keeps, or not authorized. */
export async function topicRefusal(c: Connection, topic: string): Promise<ErrorCode | undefined> {
  if (topic.length > c.hub.limits.maxTopicLength) return ErrorCode.TopicTooLong
  if (!isWellFormed(topic)) return ErrorCode.BadTopic
  const authorize = c.hub.authorizeSubscribe
  if (!authorize) return undefined
  try {
    return (await authorize(c.userId!, topic, c.claims)) ? undefined : ErrorCode.Forbidden
  } catch (error) {
    // The app's check failed (its lookup, a topic it cannot parse): no answer for this topic alone.
    c.hub.log.error({ conn: c.id, user: c.userId, err: error }, 'authorizeSubscribe failed')
    return ErrorCode.Internal
  }
}

const REFUSAL_MESSAGES: Partial<Record<ErrorCode, (topic: string, c: Connection) => string>> = {
  [ErrorCode.Forbidden]: (topic) => `not allowed to subscribe to "${topic}"`,
  [ErrorCode.TopicTooLong]: (_, c) => `topics are at most ${c.hub.limits.maxTopicLength} characters`,
  [ErrorCode.BadTopic]: () => 'a topic may hold no lone surrogate and no U+0000',
  [ErrorCode.TooManySubscriptions]: (_, c) => `at most ${c.hub.limits.maxSubscriptionsPerUser} subscriptions per user`,
  [ErrorCode.Internal]: (topic) => `could not authorize "${topic}"`,
}

/**
 * Subscribes to one topic (`topic`: answered `subscribed`, or an `error` that
 * says why not) or several (`topics`: answered by one `subscribed` with the
 * topics subscribed and those refused).
 */
async function subscribe(c: Connection, f: SubscribeFrame): Promise<void> {
  const wanted = [...new Set(f.topics ?? [f.topic!])]
  const refused: RefusedTopic[] = []
  const allowed: string[] = []
  for (const topic of wanted) {
    const code = await topicRefusal(c, topic)
    if (code) refused.push({ topic, code })
    else allowed.push(topic)
  }
  if (c.closed) return
  let full: string[] = []
  try {
    if (allowed.length > 0) {
      full = await c.hub.budgets.oneAtATime(c.userId!, () =>
        c.hub.store.subscribe(c.userId!, allowed, c.hub.limits.maxSubscriptionsPerUser),
      )
    }
  } catch (error) {
    return topicsNotStored(c, error, f)
  }
  if (c.closed) return
  for (const topic of full) refused.push({ topic, code: ErrorCode.TooManySubscriptions })
  if (f.topic !== undefined) {
    const [refusal] = refused
    if (refusal)
      c.reply({ type: 'error', code: refusal.code, message: REFUSAL_MESSAGES[refusal.code]!(refusal.topic, c), ...rid(f.requestId) })
    else c.reply({ type: 'subscribed', topic: f.topic, ...rid(f.requestId) })
    return
  }
  const subscribed = allowed.filter((t) => !full.includes(t))
  // A topic the app's check failed for is not refused (a client drops a refused topic for good): an `internal`
  // error says so, and the client, which still holds it, sends it again after its next auth.
  const final = refused.filter((r) => r.code !== ErrorCode.Internal)
  c.reply({ type: 'subscribed', topics: subscribed, ...(final.length > 0 && { refused: final }), ...rid(f.requestId) })
  for (const { topic, code } of refused) {
    if (code === ErrorCode.Internal) c.reply({ type: 'error', code, message: REFUSAL_MESSAGES[code]!(topic, c), ...rid(f.requestId) })
  }
}

/**
 * A topic change the store failed (the database lost a moment): answered `internal`, and the
 * connection closes with 1011. The client holds the topics it asked for as its own and sends them
 * again after each auth, so the reconnect puts the store right; left open, the connection would miss
 * a topic's notifications, or get those of one given up, until then. (An `authorizeSubscribe` that
 * throws is answered `internal` alone: closing would bring the same topics back at every auth.)
 */
function topicsNotStored(c: Connection, error: unknown, f: SubscribeFrame): void {
  if (!c.closed) c.requestFailed(error, true, f.requestId)
}

async function unsubscribe(c: Connection, f: SubscribeFrame): Promise<void> {
  const topics = f.topics ?? [f.topic!]
  // A topic no store keeps is no subscription: nothing to end.
  const kept = topics.filter(isWellFormed)
  try {
    if (kept.length > 0) await c.hub.store.unsubscribe(c.userId!, kept)
  } catch (error) {
    return topicsNotStored(c, error, f)
  }
  if (c.closed) return
  c.reply({ type: 'unsubscribed', ...(f.topic !== undefined ? { topic: f.topic } : { topics }), ...rid(f.requestId) })
}

/**
 * One page, newest first, cut short (with `next`) before it takes more than a
 * replay round's bytes, and paid for from the user's byte budget. Read changes
 * told while it is read follow it, as they follow a replay round: its read
 * flags, read before them, would otherwise contradict them.
 */
async function history(c: Connection, f: HistoryFrame): Promise<void> {
  await c.payDebt()
  if (c.closed) return
  c.hold()
  try {
    await sendPage(c, f)
  } finally {
    c.release()
  }
}

async function sendPage(c: Connection, f: HistoryFrame): Promise<void> {
  const limit = f.limit ?? DEFAULT_HISTORY_LIMIT
  // One more than the page: whether an older entry exists (retention may have removed all below the page).
  const rows = await c.hub.store.history(c.userId!, f.before, limit + 1)
  if (c.closed) return
  // Each item is serialised once: to measure the page, and into the frame.
  const items: string[] = []
  let bytes = 0
  for (const n of rows.slice(0, limit)) {
    const json = JSON.stringify(n)
    bytes += Buffer.byteLength(json)
    if (items.length > 0 && bytes > c.hub.limits.maxBufferedBytes / 2) break
    items.push(json)
  }
  const last = rows[items.length - 1]
  const next = items.length < rows.length ? { next: last!.seq } : {}
  const page = historyFrame(items, { ...next, ...rid(f.requestId) })
  c.budget.bytes.charge(Buffer.byteLength(page))
  c.send(page)
  if (items.length === MAX_HISTORY_LIMIT || items.length < Math.min(limit, rows.length)) c.pagePaid()
}
