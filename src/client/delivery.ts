import type { AckFrame, AuthSuccessFrame, Notification, ReadFrame } from '../protocol/frames.js'
import { isSeq } from '../protocol/guards.js'
import type { CursorStorage } from './storage.js'

/**
 * Exactly-once delivery for the signed-in user: the cursor (the last `seq`
 * handed to the app, persisted per user), dropping what is at or below it,
 * the cumulative ack (a while after each delivery, unless the server acks by
 * its pings, and on close), and the unread count.
 */
export interface Delivery {
  /** 0 before the user's first auth (since() of another user sets it back, and tells onUnread). */
  readonly unread: number
  /**
   * The highest seq the unread count covers: what the user could have seen (a `markAllRead` marks up
   * to it). Undefined before the user's first auth (since() of another user unsets it).
   */
  readonly seq: number | undefined
  /**
   * The cursor to resume from for `userId` (the token's `sub`), sent as
   * `since`. For one user the cursor in memory is authoritative and storage
   * carries it across reloads; another user (or the first) starts from that
   * user's stored one.
   */
  since(userId: string): number
  /**
   * The server accepted us: its latest seq, unread count and floor. True when
   * retention removed notifications after our cursor before we got them.
   */
  online(f: AuthSuccessFrame): boolean
  /** Takes a notification: true when it is new and goes to the app, false for a duplicate. */
  accept(n: Pick<Notification, 'seq' | 'read'>): boolean
  /** Sends the cumulative ack of everything delivered since the last one, now. */
  ack(): void
  /** Drops a pending ack: it goes with the connection, and the next auth schedules it again. */
  stop(): void
  /** Read state changed: the server's unread count, which covers everything up to `seq`. */
  read(f: Pick<ReadFrame, 'all' | 'seq' | 'unreadCount'>): void
}

/** `send` sends an ack, or says false when the link cannot send now. */
export function createDelivery(
  storage: CursorStorage,
  ackDelay: number,
  send: (frame: AckFrame) => boolean,
  onUnread: (count: number) => void,
): Delivery {
  /** The last seq handed to the app. */
  let cursor = 0
  /** The storage key of the cursor: one per user. Set by since(), which every auth calls before the cursor is used. */
  let key!: string
  let acked = 0
  /**
   * The server acks by its pings (auth_success.pingAcks): no timed acks, unless
   * the cursor does not outlive the page (`volatile`).
   */
  let pinged: boolean | undefined
  /**
   * The storage is `volatile`, or a write to it threw (Safari's private mode, a
   * full quota, now or later): the next page starts from the acknowledged
   * cursor either way, so the client acks by timer from then on.
   */
  let volatile = storage.volatile
  let timer: ReturnType<typeof setTimeout> | undefined
  let unread = 0
  /**
   * The highest seq the unread count covers: the user's latest seq at auth, or a later `read` frame's
   * or notification's. Anything newer is new and counts as unread. Undefined before the user's first
   * auth: the client knows of nothing yet (no comparison with it holds, so the first seq counts).
   */
  let counted!: number

  /** The stored cursor: anything but a seq (a corrupted or hand-edited entry: -1, 1.5, Infinity) counts as none. */
  const stored = () => {
    let s: number | undefined
    try {
      s = +storage.getItem(key)! // null (none stored) is 0
    } catch {}
    return isSeq(s) ? s : 0
  }
  /** Another client of the user (a tab sharing storage) may be ahead: the stored cursor only moves on, unless `back`. */
  const move = (seq: number, back?: boolean) => {
    cursor = seq
    try {
      if (back || seq > stored()) storage.setItem(key, String(seq))
    } catch {
      volatile = true // every caller schedules the ack next
    }
  }
  const setUnread = (count: number) => {
    if (count === unread) return
    unread = count
    onUnread(count)
  }
  const schedule = () => {
    if (!pinged || volatile) timer ??= setTimeout(d.ack, ackDelay)
  }

  const d: Delivery = {
    get unread() {
      return unread
    },
    get seq() {
      return counted
    },
    since(userId) {
      const k = `belfry:cursor:${userId}`
      // The same user: its own cursor (storage may hold another client's, which got more).
      if (k !== key) {
        key = k
        cursor = stored()
        acked = 0 // the stored cursor may never have been acked: ack it once online
        // The last user's bound and count are not this one's: no bound and 0 unread until its auth, as before
        // the first. The bound goes first: setUnread tells the app, whose handler may mark all already.
        counted = undefined as never
        setUnread(0)
      }
      return cursor
    },
    online(f) {
      const expired = cursor > 0 && cursor < f.oldestSeq!
      // Resume from the floor: what expired is told once, not again at every reconnect of an emptied inbox.
      if (expired) move(f.oldestSeq!)
      // The server knows less than we do: it is another database. Start over from its numbering.
      if (f.seq < cursor) {
        acked = f.seq
        move(f.seq, true)
      }
      counted = f.seq
      setUnread(f.unreadCount)
      pinged = f.pingAcks
      // Delivered before the last drop but not yet acked: to an older server `since` is no ack.
      if (cursor > acked) schedule()
      return expired
    },
    accept(n) {
      if (n.seq <= cursor) return false
      move(n.seq)
      // `!(<=)`: true before the first auth too (undefined).
      if (!(n.seq <= counted)) {
        counted = n.seq
        if (!n.read) setUnread(unread + 1)
      }
      schedule()
      return true
    },
    ack() {
      d.stop()
      if (cursor > acked && send({ type: 'ack', seq: cursor })) acked = cursor
    },
    stop() {
      timer = void clearTimeout(timer)
    },
    read(f) {
      // Its count covers every entry up to its seq: one that comes after it (fanned out by another
      // process, maybe marked read there before) is counted in it already.
      if (!(f.seq <= counted)) counted = f.seq
      setUnread(f.unreadCount)
    },
  }
  return d
}
