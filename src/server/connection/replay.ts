import { ErrorCode } from '../../protocol/index.js'
import { frame, replayFrame, rid } from '../serialize.js'
import type { Connection } from './connection.js'

/**
 * Replay and live delivery for one connection.
 *
 * A replay sends the stored notifications after a cursor in rounds, each
 * bounded by `replayBatch` notifications and by half of `maxBufferedBytes`.
 * With more waiting, a round ends with `replayed {more: true}` and the client
 * asks for the next with `resume` (the article's client, which does not ask,
 * gets the next round once the socket has taken this one). Once caught up the
 * connection goes live in the same tick as its last read, so nothing
 * published in between is lost or sent twice.
 *
 * A `resume` only continues a replay the server announced: after a round
 * that ended `more: true`, from that round's seq. Each round is paid for from
 * the user's byte budget (budget.ts): past it, the next round waits.
 *
 * Live, each notification is sent if it is the next seq; while replaying it
 * is held back (the replay reads it from the store); a gap (an event
 * overtaken by another, or lost) sends the connection back to the store.
 */
export class Replay {
  readonly #c: Connection
  /** Highest seq sent on this socket: live delivery continues from here. */
  #sentSeq = 0
  /** Where the connection started, and what it may ack before anything more is sent (see {@link ackable}). */
  #startSeq = 0
  #ackableAtStart = 0
  /** Highest seq known to exist (from the broker or a store read) that a replay round must still send. */
  #pendingMax = 0
  /** The seq of the last round that ended `more: true`: the one `resume` this connection may send. */
  #announced: number | undefined

  constructor(c: Connection) {
    this.#c = c
  }

  /** The seq of the round that ended `more: true` and waits for its `resume`, if one does. */
  get announced(): number | undefined {
    return this.#announced
  }

  /** The highest seq sent on this socket. */
  get sentSeq(): number {
    return this.#sentSeq
  }

  /** The highest seq sent on this socket or announced to it (a replay round will send it). */
  get reached(): number {
    return Math.max(this.#sentSeq, this.#pendingMax)
  }

  /**
   * The most an ack on this socket may cover: what was sent on it, or before
   * anything was, `ackableAtStart` as {@link start} was told (the cursor, when
   * the server took it as an ack; a cursor from another database, which the
   * connection starts beyond without sending, acks nothing).
   */
  get ackable(): number {
    return this.#sentSeq > this.#startSeq ? this.#sentSeq : this.#ackableAtStart
  }

  /**
   * Replays what follows `since` (at auth), then goes live. `latest` is the
   * user's latest seq as read at auth: with nothing after `since` the first
   * round skips its read (anything published since is in `#pendingMax`).
   */
  start(since: number, latest: number, ackableAtStart: number): Promise<void> {
    this.#sentSeq = this.#startSeq = since
    this.#ackableAtStart = ackableAtStart
    this.#c.moveTo('replaying')
    return this.#round(undefined, since >= latest)
  }

  /** The client asks for the next round of an announced replay. */
  resume(since: number, requestId?: string): Promise<void> | undefined {
    if (this.#announced === undefined || since !== this.#announced) {
      const expected = this.#announced === undefined ? 'no replay is waiting for it' : `expected since: ${this.#announced}`
      this.#c.reject(ErrorCode.BadFrame, `resume continues a replay that ended with more: true, from its seq (${expected})`, requestId)
      return undefined
    }
    this.#announced = undefined
    return this.#round(requestId)
  }

  /** A notification for this connection's user, from the broker. */
  deliver(seq: number, data: string | Buffer): void {
    const c = this.#c
    if (c.phase === 'replaying') {
      this.#pendingMax = Math.max(this.#pendingMax, seq)
      return
    }
    if (c.phase !== 'live' || seq <= this.#sentSeq || c.leaving) return
    if (seq === this.#sentSeq + 1) {
      this.#sentSeq = seq
      c.hub.metrics?.deliveries.inc()
      c.send(data)
      c.acks?.schedule()
      return
    }
    this.#gap(seq)
  }

  /** The user's latest seq, read from the store: a live connection behind it catches up (an event was lost). */
  catchUp(latest: number): void {
    if (this.#c.phase === 'replaying') this.#pendingMax = Math.max(this.#pendingMax, latest)
    else if (this.#c.phase === 'live' && latest > this.#sentSeq && !this.#c.leaving) this.#gap(latest)
  }

  /** Seqs up to `seq` exist that this connection has not sent: back to the store. */
  #gap(seq: number): void {
    this.#pendingMax = seq
    this.#c.moveTo('replaying')
    this.#c.schedule(() => this.#round(undefined))
  }

  /** One round (or several, for the article's client). Read changes told meanwhile follow its notifications. */
  async #round(requestId: string | undefined, caughtUp = false): Promise<void> {
    this.#c.hold()
    try {
      await this.#rounds(requestId, caughtUp)
    } finally {
      this.#c.release()
    }
  }

  async #rounds(requestId: string | undefined, caughtUp: boolean): Promise<void> {
    const c = this.#c
    const { store, limits } = c.hub
    const userId = c.userId!
    for (;;) {
      await c.payDebt()
      if (c.closed) return
      const read = !caughtUp
      const announced = this.#pendingMax
      const rows = read ? await store.after(userId, this.#sentSeq, limits.replayBatch + 1) : []
      if (read) c.hub.metrics?.replayRounds.inc()
      caughtUp = false
      if (c.closed) return
      // The client asks for the next round only after reading this one, so the send buffer
      // never holds more than half its bound of replay.
      let more = rows.length > limits.replayBatch
      let bytes = 0
      const bucket = c.budget.bytes
      // The round's frames leave in one write, not one each.
      c.cork()
      for (const row of more ? rows.slice(0, limits.replayBatch) : rows) {
        if (bytes >= limits.maxBufferedBytes / 2) {
          more = true
          break
        }
        const data = replayFrame(row)
        const size = Buffer.byteLength(data)
        bytes += size
        bucket.charge(size)
        c.hub.metrics?.replayed.inc()
        c.send(data)
        if (c.closed) return // cut off as a slow consumer
        this.#sentSeq = row.seq
      }
      if (more) {
        if (!c.acks) {
          this.#announced = this.#sentSeq
          c.reply({ type: 'replayed', more: true, seq: this.#sentSeq, ...rid(requestId) })
          return
        }
        // The article's client will not ask: send the next round once the socket has taken this one.
        await new Promise<void>((resolve) => c.send(frame({ type: 'replayed', more: true, seq: this.#sentSeq }), resolve))
        // The socket took it at once (it nearly always does): without a turn of the event loop here, a long
        // backlog's rounds would run back to back, every other socket and request waiting (100,000 entries: 0.5 s).
        await new Promise((resolve) => setImmediate(resolve))
        // Drained: its ack is being written, and the process it reconnects to sends the rest from there.
        if (c.closed || c.leaving) return
        c.acks.schedule()
        continue
      }
      // Nothing after the seq sent, though more was announced before the read: retention removed
      // it since (what is announced is committed). Nothing is left to send up to there.
      if (read && rows.length === 0) this.#sentSeq = Math.max(this.#sentSeq, announced)
      // Published while the read was in flight: read again before going live.
      if (this.#pendingMax > this.#sentSeq) continue
      c.moveTo('live')
      c.reply({ type: 'replayed', more: false, seq: this.#sentSeq, ...rid(requestId) })
      c.acks?.schedule()
      return
    }
  }
}
