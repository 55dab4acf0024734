import type { ServerFrame } from '../protocol/index.js'
import { ProtocolError, RequestError, TimeoutError } from './errors.js'

interface Pending {
  text: string
  resolve(frame: ServerFrame): void
  reject(error: Error): void
  timer: ReturnType<typeof setTimeout>
}

/** Requests and their replies, matched by `requestId`. */
export interface Requests {
  request<T extends ServerFrame>(frame: { type: string } & Record<string, unknown>): Promise<T>
  /** Sends every waiting request (after auth). */
  flush(): void
  /** Settles the request a reply belongs to, if any. */
  settle(frame: ServerFrame): void
  rejectAll(error: Error): void
}

/**
 * A request made while the link is down waits (at most `max` of them) and goes
 * out after auth; one that was in flight when the link dropped goes out again
 * (every request is idempotent). Each rejects with a `TimeoutError` after
 * `timeout` ms.
 */
export function createRequests(send: (text: string) => boolean, timeout: number, max: number): Requests {
  const pending = new Map<string, Pending>()
  let next = 0
  return {
    request<T extends ServerFrame>(frame: { type: string } & Record<string, unknown>) {
      return new Promise<T>((resolve, reject) => {
        if (pending.size >= max) {
          reject(new RequestError(`queue full (options.maxQueue = ${max})`))
          return
        }
        const requestId = `r${++next}`
        const text = JSON.stringify({ ...frame, requestId })
        const timer = setTimeout(() => {
          pending.delete(requestId)
          reject(new TimeoutError(`${frame.type}: no reply in ${timeout} ms`))
        }, timeout)
        pending.set(requestId, { text, resolve: resolve as (f: ServerFrame) => void, reject, timer })
        send(text)
      })
    },
    flush() {
      for (const p of pending.values()) send(p.text)
    },
    settle(frame) {
      const id = (frame as { requestId?: string }).requestId ?? ''
      const p = pending.get(id)
      if (!p) return
      pending.delete(id)
      clearTimeout(p.timer)
      if (frame.type === 'error') p.reject(new ProtocolError(frame.message, { code: frame.code }))
      else p.resolve(frame)
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
