import WebSocket from 'ws'
import type { Connection } from './connection.js'

/** How soon after sending the server asks a client that does not ack how far it has read. */
const IMPLICIT_ACK_MS = 1000

/**
 * Acks for a client of the article's protocol: its auth frame has no `since`,
 * and it neither asks for the next replay round nor keeps a cursor of its own,
 * so the server's acknowledged cursor is where it resumes. What it has
 * received counts as delivered (the article's "queue if offline, deliver on
 * reconnect"), and soon: about a second after sending, the server pings with
 * the last seq sent ({@link Connection.ping}), without waiting for the
 * heartbeat, and the matching pong acks it.
 */
export class ImplicitAcks {
  readonly #c: Connection
  #timer: NodeJS.Timeout | undefined

  constructor(c: Connection) {
    this.#c = c
  }

  /** Something was sent: an ack ping, at most once a second. */
  schedule(): void {
    if (this.#c.closed) return
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined
      if (this.#c.ws.readyState === WebSocket.OPEN) this.#c.ping()
    }, IMPLICIT_ACK_MS).unref()
  }

  stop(): void {
    clearTimeout(this.#timer)
  }
}
