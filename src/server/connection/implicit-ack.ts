import WebSocket from 'ws'
import type { Connection } from './connection.js'

/** How often the server asks a client that does not ack how far it has read. */
const IMPLICIT_ACK_MS = 1000

/**
 * Acks for a client of the article's protocol: its auth frame has no `since`,
 * and it neither asks for the next replay round nor acks. What it has
 * received counts as delivered (the article's "queue if offline, deliver on
 * reconnect"): about a second after sending, the server sends a WebSocket
 * ping that carries the last seq sent, and the matching pong — which the
 * client's WebSocket sends only after receiving everything before the ping —
 * acks it. Other pongs ack nothing (one store write per ping, none per forged pong).
 */
export class ImplicitAcks {
  readonly #c: Connection
  #timer: NodeJS.Timeout | undefined
  /** The seq the unanswered ack ping carries. */
  #pingedSeq = 0

  constructor(c: Connection) {
    this.#c = c
  }

  /** Something was sent: ping with the seq sent so far, at most once a second. */
  schedule(): void {
    if (this.#c.closed) return
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined
      const { ws, replay } = this.#c
      if (ws.readyState !== WebSocket.OPEN) return
      this.#pingedSeq = replay.sentSeq
      ws.ping(String(this.#pingedSeq))
    }, IMPLICIT_ACK_MS).unref()
  }

  /** A pong: acks the seq of the ack ping it answers. */
  pong(payload: Buffer): void {
    const seq = this.#pingedSeq
    const c = this.#c
    if (seq === 0 || payload.toString() !== String(seq) || c.closed) return
    this.#pingedSeq = 0
    c.hub.store.ack(c.userId!, seq).catch((error: unknown) => c.hub.log.warn({ conn: c.id, err: error }, 'ack failed'))
  }

  stop(): void {
    clearTimeout(this.#timer)
  }
}
