import type { Notification, ServerFrame } from '../protocol/index.js'
import type { StoredNotification } from './store/store.js'

/**
 * Serialises the parts of a notification every recipient shares, once per
 * publish. {@link notificationFrame} completes it per user with `seq` and `read`,
 * so a broadcast to N users costs one `JSON.stringify`, not N.
 */
export function sharedPart(n: StoredNotification): string {
  const json = JSON.stringify({ type: 'notification', ...n })
  return json.slice(0, -1)
}

/** Completes a frame made by {@link sharedPart}. */
export function notificationFrame(shared: string, seq: number, read: boolean): string {
  return `${shared},"seq":${seq},"read":${read}}`
}

/** Serialises a stored notification read back for a replay round: marked `replayed`, catch-up rather than live. */
export function replayFrame(n: Notification): string {
  return JSON.stringify({ type: 'notification', ...n, replayed: true })
}

/** A `history` frame around items serialised already, with `next` and `requestId` when given. */
export function historyFrame(items: readonly string[], rest: { next?: number; requestId?: string }): string {
  return `${JSON.stringify({ type: 'history', ...rest }).slice(0, -1)},"items":[${items.join(',')}]}`
}

/** Serialises any server frame. */
export function frame(f: ServerFrame): string {
  return JSON.stringify(f)
}

/** `{ requestId }` when there is one, to spread into a reply. */
export const rid = (requestId: string | undefined): { requestId?: string } => (requestId === undefined ? {} : { requestId })
