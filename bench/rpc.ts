/**
 * Request/response over a child process's IPC channel, and the clock every
 * process of the bench shares.
 */
import type { ChildProcess } from 'node:child_process'

/**
 * Milliseconds on CLOCK_MONOTONIC (`process.hrtime`), which is system-wide on
 * Linux: a time taken in the server child can be compared with one taken in a
 * load generator. `performance.now()` is per process and cannot.
 */
export const now = (): number => Number(process.hrtime.bigint()) / 1e6

interface Request {
  id: number
  method: string
  args: unknown
}
type Response = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string }

export type Handlers = Record<string, (args: never) => unknown>

/** Serves requests from the parent; a handler's result (or thrown message) is the reply. */
export function serve(handlers: Handlers): void {
  process.on('message', (message: Request) => {
    const handler = handlers[message.method]
    const reply = (r: Response) => process.send?.(r)
    if (!handler) {
      reply({ id: message.id, ok: false, error: `unknown method ${message.method}` })
      return
    }
    Promise.resolve()
      .then(() => handler(message.args as never))
      .then(
        (value) => reply({ id: message.id, ok: true, value: value ?? null }),
        (error: unknown) =>
          reply({ id: message.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      )
  })
  // The parent went away: nothing left to serve.
  process.on('disconnect', () => process.exit(0))
}

/** The parent's end: `call(method, args)` resolves with the child's reply. */
export interface Peer {
  readonly child: ChildProcess
  call<T = unknown>(method: string, args?: unknown, timeoutMs?: number): Promise<T>
}

export function peer(child: ChildProcess, name: string): Peer {
  let next = 1
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }>()
  child.on('message', (message: Response) => {
    const p = pending.get(message.id)
    if (!p) return
    pending.delete(message.id)
    clearTimeout(p.timer)
    if (message.ok) p.resolve(message.value)
    else p.reject(new Error(`${name}: ${message.error}`))
  })
  child.on('exit', (code, signal) => {
    for (const p of pending.values()) {
      clearTimeout(p.timer)
      p.reject(new Error(`${name} exited (${signal ?? code})`))
    }
    pending.clear()
  })
  return {
    child,
    call<T>(method: string, args: unknown = {}, timeoutMs = 60_000): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const id = next++
        const timer = setTimeout(() => {
          pending.delete(id)
          reject(new Error(`${name}.${method} timed out after ${timeoutMs} ms`))
        }, timeoutMs)
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer })
        child.send({ id, method, args } satisfies Request)
      })
    },
  }
}
