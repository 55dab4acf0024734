import type { ClientFrame, Replies, RequestFrame, ServerFrame } from '../protocol/frames.js'
import { ProtocolError, RequestError, TimeoutError } from './errors.js'

/** The frame type that answers each request the client makes (an `error` may answer any). */
const REPLY = { history: 'history', mark_read: 'read' } satisfies {
  [K in keyof Replies]?: Replies[K]['type']
}

/** A request the client makes. */
export type Request = RequestFrame & { type: keyof typeof REPLY }

interface Pending {
  frame: Request
  resolve(frame: ServerFrame): void
  reject(error: Error): void
  timer: ReturnType<typeof setTimeout>
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
   * pending. True when the frame belonged to a pending request.
   */
  settle(frame: ServerFrame): unknown
  rejectAll(error: Error): void
}

/**
 * A request made while the link is down waits (at most `max` of them) and goes
 * out after auth; one that was in flight when the link dropped goes out again
 * (every request is idempotent). Each rejects with a `TimeoutError` after
 * `timeout` ms.
 */
export function createRequests(
  send: (frame: ClientFrame) => boolean,
  timeout: number,
  max: number,
  report: (error: ProtocolError) => void,
): Requests {
  const pending = new Map<string, Pending>()
  let next = 0
  return {
    request<F extends Request>(f: F) {
      return new Promise<Replies[F['type']]>((resolve, reject) => {
        if (pending.size >= max) return reject(new RequestError(`queue full (options.maxQueue = ${max})`))
        const requestId = `r${++next}`
        const frame = { ...f, requestId }
        const timer = setTimeout(() => {
          pending.delete(requestId)
          reject(new TimeoutError(`${f.type}: no reply in ${timeout} ms`))
        }, timeout)
        pending.set(requestId, { frame, resolve: resolve as (f: ServerFrame) => void, reject, timer })
        send(frame)
      })
    },
    flush() {
      for (const p of pending.values()) send(p.frame)
    },
    settle(frame) {
      const id = (frame as { requestId?: string }).requestId!
      const p = pending.get(id)
      if (p) {
        if (frame.type === 'error' || frame.type === (p.frame.type === 'history' ? 'history' : 'read')) {
          pending.delete(id)
          clearTimeout(p.timer)
          if (frame.type === 'error') p.reject(new ProtocolError(frame.message, { code: frame.code }))
          else p.resolve(frame)
        } else report(new ProtocolError(`bad frame: ${frame.type}`))
      }
      return p
    },
    rejectAll(error) {
      for (const p of pending.values()) {
        clearTimeout(p.timer)
        p.reject(error)
      }
      pending.clear()
    },
  }
}
