import type { ClientFrame, ReadFrame, Replies, RequestFrame, ServerFrame } from '../protocol/frames.js'
import { CLIENT_FRAME_BYTES } from '../protocol/guards.js'
import { ProtocolError, RequestError, TimeoutError } from './errors.js'

/** The frame type that answers each request the client makes (an `error` may answer any). */
const REPLY = { history: 'history', mark_read: 'read' } satisfies {
  [K in keyof Replies]?: Replies[K]['type']
}

/** A request the client makes. */
export type Request = RequestFrame & { type: keyof typeof REPLY }

interface Pending {
  frame: Request
  /** Settles it (the error, or else the reply) and forgets it. */
  end(error: Error | false, reply?: ServerFrame): void
}

/** Requests and their replies, matched by `requestId`. */
export interface Requests {
  /** Sends `frame` with a fresh `requestId`; resolves with the reply frame. */
  request<F extends Request>(frame: F): Promise<Replies[F['type']]>
  /** Sends every waiting request (after auth). */
  flush(): void
  /**
   * Settles the request a reply belongs to with its reply type or an `error`;
   * reports any other frame with that `requestId` and leaves the request
   * pending. True when it settled one: a frame that settled none is the
   * caller's to handle as its type says (a notification is delivered).
   */
  settle(frame: ServerFrame): unknown
  rejectAll(error: Error): void
}

/**
 * A request made while the link is down waits (at most `max` of them) and goes
 * out after auth; one that was in flight when the link dropped goes out again
 * (every request is idempotent). Each rejects with a `TimeoutError` after
 * `timeout` ms. A reply goes through `reply` as it settles its request (in
 * the frame's turn, before any frame behind it: a `read` one is applied there),
 * and the request resolves with what `reply` returns.
 */
export function createRequests(
  send: (frame: ClientFrame) => boolean,
  timeout: number,
  max: number,
  report: (error: ProtocolError) => void,
  reply: (frame: ReadFrame) => unknown,
): Requests {
  const pending = new Map<string, Pending>()
  let next = 0
  return {
    request<F extends Request>(f: F) {
      return new Promise<Replies[F['type']]>((resolve, reject) => {
        if (pending.size >= max) throw new RequestError(`queue full (options.maxQueue = ${max})`)
        // A frame a server refuses whole (past maxFrameBytes ws closes the socket, 1009, and the request
        // would go again after every auth, cutting the connection each time): the server's answer, at once.
        if (new Blob([JSON.stringify(f)]).size >= CLIENT_FRAME_BYTES)
          throw new ProtocolError(`${f.type}: 64000 bytes or more`, { code: 'bad_frame' })
        const requestId = `r${++next}`
        const timer = setTimeout(() => p.end(new TimeoutError(`${f.type}: no reply in ${timeout} ms`)), timeout)
        const p: Pending = {
          frame: { ...f, requestId },
          end(error, reply) {
            pending.delete(requestId)
            clearTimeout(timer)
            if (error) reject(error)
            else resolve(reply as Replies[F['type']])
          },
        }
        pending.set(requestId, p)
        send(p.frame)
      })
    },
    flush() {
      for (const p of pending.values()) send(p.frame)
    },
    settle(frame) {
      const p = pending.get((frame as { requestId?: string }).requestId!)
      const error = frame.type === 'error'
      // Its reply type (REPLY): `history`'s is `history`, `mark_read`'s `read`.
      if (p && (error || frame.type === p.frame.type.replace('mark_', ''))) {
        p.end(error && new ProtocolError(frame.message, { code: frame.code }), reply(frame as ReadFrame) as ServerFrame)
        return p
      }
      // Another type is no reply: told, and handled as any frame of its type (a notification is delivered).
      if (p) report(new ProtocolError(`bad frame: ${frame.type}`))
    },
    rejectAll(error) {
      for (const p of pending.values()) p.end(error)
    },
  }
}
