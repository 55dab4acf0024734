import type { ServerFrame } from '../protocol/index.js'
import { ProtocolError, RequestError, TimeoutError } from './errors.js'

interface Pending {
  text: string
  resolve(frame: ServerFrame): void
  reject(error: Error): void
  timer: ReturnType<typeof setTimeout>
}

/**
 * Requests and their replies, matched by `requestId`. A request made while the
 * link is down waits (bounded) and goes out after auth; one that was in flight
 * when the link dropped goes out again (every request is idempotent). Each
 * rejects with a `TimeoutError` after `timeout` ms.
 */
export class Requests {
  readonly #pending = new Map<string, Pending>()
  #next = 0

  constructor(
    private readonly send: (text: string) => boolean,
    private readonly timeout: number,
    private readonly max: number,
  ) {}

  request<T extends ServerFrame>(frame: { type: string } & Record<string, unknown>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.#pending.size >= this.max) {
        reject(new RequestError(`queue full (options.maxQueue = ${this.max})`))
        return
      }
      const requestId = `r${++this.#next}`
      const text = JSON.stringify({ ...frame, requestId })
      const timer = setTimeout(() => {
        this.#pending.delete(requestId)
        reject(new TimeoutError(`${frame.type}: no reply in ${this.timeout} ms`))
      }, this.timeout)
      this.#pending.set(requestId, { text, resolve: resolve as (f: ServerFrame) => void, reject, timer })
      this.send(text)
    })
  }

  /** Sends every waiting request (after auth). */
  flush(): void {
    for (const p of this.#pending.values()) this.send(p.text)
  }

  /** Settles the request a reply belongs to, if any. */
  settle(frame: ServerFrame): void {
    const id = (frame as { requestId?: string }).requestId ?? ''
    const p = this.#pending.get(id)
    if (!p) return
    this.#pending.delete(id)
    clearTimeout(p.timer)
    if (frame.type === 'error') p.reject(new ProtocolError(frame.message, { code: frame.code }))
    else p.resolve(frame)
  }

  rejectAll(error: Error): void {
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer)
      p.reject(error)
    }
    this.#pending.clear()
  }
}
