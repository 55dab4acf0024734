import type { AuthFrame, ClientFrame, HistoryFrame, MarkReadFrame } from '../../protocol/index.js'
import { frame, historyFrame, rid } from '../serialize.js'
import type { Connection } from './connection.js'

const DEFAULT_HISTORY_LIMIT = 20

/** The frames of an authenticated connection: acks, replay paging, read state, topics, history, ping. */
export async function handleRequest(c: Connection, f: Exclude<ClientFrame, AuthFrame>): Promise<void> {
  const userId = c.userId!
  const { store } = c.hub
  switch (f.type) {
    case 'ack':
      await store.ack(userId, f.seq)
      return
    case 'resume': {
      // Clamped as at auth: a cursor past the latest seq would hold back every later notification.
      const { latestSeq } = await store.touchUser(userId)
      if (c.closed) return
      return c.replay.start(Math.min(f.since, latestSeq), f.requestId)
    }
    case 'mark_read':
      return markRead(c, f)
    case 'subscribe':
    case 'unsubscribe':
      await (f.type === 'subscribe' ? store.subscribe(userId, f.topic) : store.unsubscribe(userId, f.topic))
      c.reply({ type: f.type === 'subscribe' ? 'subscribed' : 'unsubscribed', topic: f.topic, ...rid(f.requestId) })
      return
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
  const { ids, all, seq, unreadCount } = await c.hub.store.markRead(userId, f.all ? 'all' : (f.ids ?? []))
  c.reply({ type: 'read', ids, all, seq, unreadCount, ...rid(f.requestId) })
  if (!all && ids.length === 0) return
  // Committed and answered: a failing broker only keeps the other tabs from hearing of it now.
  try {
    await c.hub.broker.publish([{ kind: 'read', userId, origin: c.id, frame: frame({ type: 'read', ids, all, seq, unreadCount }) }])
  } catch (error) {
    c.hub.log.error({ conn: c.id, err: error }, 'broker publish failed')
  }
}

/** One page, newest first, cut short (with `next`) before it takes more than a replay round's bytes. */
async function history(c: Connection, f: HistoryFrame): Promise<void> {
  const limit = f.limit ?? DEFAULT_HISTORY_LIMIT
  const rows = await c.hub.store.history(c.userId!, f.before, limit)
  if (c.closed) return
  // Each item is serialised once: to measure the page, and into the frame.
  const items: string[] = []
  let bytes = 0
  for (const n of rows) {
    const json = JSON.stringify(n)
    bytes += Buffer.byteLength(json)
    if (items.length > 0 && bytes > c.hub.limits.maxBufferedBytes / 2) break
    items.push(json)
  }
  const last = rows[items.length - 1]
  const next = (items.length < rows.length || items.length === limit) && last && last.seq > 1 ? { next: last.seq } : {}
  c.send(historyFrame(items, { ...next, ...rid(f.requestId) }))
}
