/**
 * The one file that knows reconnecting-websocket. It builds the sockets; the
 * link decides when. reconnecting-websocket 4.4.0 is unmaintained (since 2020),
 * so its own retry timing is switched off and its known defects are worked
 * around here:
 *
 * - #183: closing a `ws` socket that is still CONNECTING emits `error` on a
 *   later tick, after reconnecting-websocket has removed its listener, and Node
 *   dies of an unhandled `error`. Every socket gets a permanent error listener
 *   at construction, and its own connect timeout is disabled (we own ours).
 * - #165: `close()` before the socket of an attempt exists leaves its connect
 *   lock held, so it never connects again. A close requested in that window is
 *   deferred until the socket exists.
 * - PR #166: a rejecting async URL provider becomes an unhandled rejection.
 *   It only ever gets a synchronous provider of a URL resolved beforehand.
 * - No jitter, and a reconnect that starts on its own: every close is caught by
 *   a listener that runs before its own and stops it from scheduling anything.
 */
import RwsImport from 'reconnecting-websocket'
import type { SocketLike, WebSocketLike } from './options.js'

type ReconnectingWebSocket = import('reconnecting-websocket').default
// Bundled, this is the class compiled from the package's source (scripts/client-bundle.ts). Run
// by Node straight from src (the benchmarks do), it is the CommonJS build, whose types say namespace.
const ReconnectingWebSocket = ((RwsImport as { default?: unknown }).default ?? RwsImport) as typeof import('reconnecting-websocket').default

/** What the transport reports. Closes the link asks for itself are not reported. */
export interface TransportEvents {
  open(): void
  message(data: string): void
  /** `error`: what the socket's error event said, where the platform says anything (`ws` does; browsers do not). */
  close(code: number, reason: string, error?: string): void
}

/** One socket at a time; no retries of its own. */
export interface Transport {
  /** Starts a connection attempt to `url`, abandoning any current socket. */
  open(url: string): void
  send(data: string): void
  /** Closes the current socket or attempt (code 1000, with `reason`); reports nothing. */
  close(reason?: string): void
}

/** setTimeout's largest delay; larger values overflow to 1 ms. */
export const NEVER = 2 ** 31 - 1

export function createTransport(WS: WebSocketLike, on: TransportEvents): Transport {
  let url = ''
  /** The socket of the attempt in progress; events of any other socket are stale. */
  let current: SocketLike | null = null
  /** close() came before the attempt's socket existed (#165). */
  let closePending = false
  let rws: ReconnectingWebSocket | undefined
  /** The error event's message of the current socket, for the close that follows it. */
  let failure: string | undefined

  class Hooked extends WS {
    constructor(u: string, p?: string | string[]) {
      super(u, p)
      // Registered before reconnecting-websocket's own listeners, so these run first.
      // #183, and: stop it before its own error handler schedules a reconnect and takes its
      // connect lock, which our later close() would leave held for good (#165 again).
      this.addEventListener('error', (e) => {
        if (this !== current) return
        failure = (e as ErrorEvent).message
        rws?.close()
      })
      this.addEventListener('open', () => this === current && on.open())
      this.addEventListener('message', (e) => this === current && on.message(String((e as MessageEvent).data)))
      this.addEventListener('close', (e) => {
        if (this !== current) return
        current = null
        rws?.close() // before its close handler runs: no reconnect of its own
        on.close((e as CloseEvent).code, (e as CloseEvent).reason, failure)
      })
      if (closePending) {
        closePending = false
        queueMicrotask(() => rws?.close())
      } else {
        current = this
      }
    }
  }

  return {
    open(next) {
      url = next
      current = null
      failure = undefined
      closePending = false
      rws ??= new ReconnectingWebSocket(() => url, undefined, {
        WebSocket: Hooked,
        startClosed: true,
        connectionTimeout: NEVER,
        maxEnqueuedMessages: 0,
      })
      rws.reconnect()
    },
    send(data) {
      rws?.send(data)
    },
    close(reason) {
      if (current) {
        current = null
        rws?.close(undefined, reason) // 1000, its default
      } else if (rws) {
        // Between reconnect() and the socket's construction there is no socket to close (#165).
        closePending = true
      }
    },
  }
}
