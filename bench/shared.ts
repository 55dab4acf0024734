/** What the bench's processes agree on: server kinds, secrets, the payload. */

export type Kind = 'belfry' | 'ws' | 'socketio'

export const KINDS: readonly Kind[] = ['belfry', 'ws', 'socketio']

export const LABEL: Record<Kind, string> = { belfry: 'belfry', ws: 'plain ws', socketio: 'socket.io' }

export const SECRET = 'bench-secret-0123456789abcdef'
export const API_KEY = 'bench-api-key-123'

/** The user id of client `i`. */
export const userId = (i: number): string => `u${i}`

/**
 * `k` names the message (a broadcast, one targeted message, a storm message);
 * `t` is the publish time on the shared monotonic clock ({@link now} in rpc.ts).
 */
export interface BenchData {
  [key: string]: string | number
  k: string
  t: number
}

export interface BenchPayload {
  title: string
  body: string
  priority: 'medium'
  data: BenchData
}

const BODY = 'Your build #812 of main passed: 1,204 tests, 0 failures. Deployed to staging in 42 s.'

/** The same notification for every server: about 200 bytes on the wire. */
export function payload(k: string, t: number): BenchPayload {
  return { title: 'Build passed', body: BODY, priority: 'medium', data: { k, t } }
}

/** The part of a server the bench drives, whatever it is. */
export interface BenchServer {
  /** Listens on 127.0.0.1:port (0 = any free port); resolves with the port. */
  listen(port: number): Promise<number>
  broadcast(p: BenchPayload): Promise<unknown>
  sendToUser(userId: string, p: BenchPayload): Promise<unknown>
  /** Closes every socket and stops listening. */
  close(): Promise<void>
}
