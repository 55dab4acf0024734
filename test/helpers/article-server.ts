import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import WebSocket, { WebSocketServer } from 'ws'

/**
 * A server that speaks only the protocol of the article belfry grew from
 * (docs/protocol.md, "The article's protocol"), so belfry's client can be
 * tested against it. Like that service it:
 *
 * - takes an `{type: 'auth', userId, token}` frame at face value (no token
 *   check) and files the socket under that `userId`,
 * - answers `{type: 'auth_success', message}` and nothing more (no seq, no
 *   unread count),
 * - pushes `{type: 'notification', title, body, priority, timestamp}` to the
 *   open sockets of a user, or of everyone,
 * - ignores every other frame and anything that is not JSON.
 *
 * Unlike the original it records what clients send, so tests can check that
 * a client did not speak beyond the article's protocol.
 */
export interface ArticleServer {
  /** `ws://127.0.0.1:port` (the article's clients connect to the root). */
  url: string
  /** Every frame clients sent, parsed; a frame that was not JSON is kept as `{type: '<unparsable>', raw}`. */
  frames: Record<string, unknown>[]
  /** The ids sockets authenticated as, one entry per auth frame (`undefined` when the frame had none). */
  auths: unknown[]
  /** Open sockets filed under `userId`. */
  connections(userId: unknown): number
  sendToUser(userId: string, notification: ArticleNotification): void
  sendToMultipleUsers(userIds: string[], notification: ArticleNotification): void
  broadcast(notification: ArticleNotification): void
  close(): Promise<void>
}

/** What the article's service takes: any fields, spread into the frame. */
export interface ArticleNotification {
  title: string
  body: string
  priority?: 'low' | 'medium' | 'high'
  [field: string]: unknown
}

/** Starts the article's service on a free port. */
export async function startArticleServer(): Promise<ArticleServer> {
  const http = createServer()
  const wss = new WebSocketServer({ server: http })
  /** userId → that user's sockets. The key is whatever the auth frame said, unchecked, as in the article. */
  const byUser = new Map<unknown, Set<WebSocket>>()
  const frames: Record<string, unknown>[] = []
  const auths: unknown[] = []

  const file = (userId: unknown, ws: WebSocket) => {
    const set = byUser.get(userId) ?? new Set<WebSocket>()
    byUser.set(userId, set)
    set.add(ws)
  }
  const unfile = (userId: unknown, ws: WebSocket) => {
    const set = byUser.get(userId)
    set?.delete(ws)
    if (set?.size === 0) byUser.delete(userId)
  }
  const push = (sockets: Iterable<WebSocket>, notification: ArticleNotification) => {
    // The article stamps the time at sending and lets nothing else through: no id, no seq, no read state.
    const text = JSON.stringify({ type: 'notification', ...notification, timestamp: new Date().toISOString() })
    for (const ws of sockets) if (ws.readyState === WebSocket.OPEN) ws.send(text)
  }

  wss.on('connection', (ws) => {
    let filedAs: unknown
    let filed = false
    ws.on('error', () => {})
    ws.on('message', (data) => {
      let frame: unknown
      try {
        frame = JSON.parse(data.toString())
      } catch {
        frames.push({ type: '<unparsable>', raw: data.toString() })
        return
      }
      if (typeof frame !== 'object' || frame === null) return
      const f = frame as Record<string, unknown>
      frames.push(f)
      if (f.type !== 'auth') return
      filedAs = f.userId
      filed = true
      auths.push(f.userId)
      file(f.userId, ws)
      ws.send(JSON.stringify({ type: 'auth_success', message: 'Connected to notification service' }))
    })
    ws.on('close', () => {
      if (filed) unfile(filedAs, ws)
    })
  })

  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()))
  const { port } = http.address() as AddressInfo

  return {
    url: `ws://127.0.0.1:${port}`,
    frames,
    auths,
    connections: (userId) => byUser.get(userId)?.size ?? 0,
    sendToUser: (userId, n) => push(byUser.get(userId) ?? [], n),
    sendToMultipleUsers(userIds, n) {
      for (const id of userIds) push(byUser.get(id) ?? [], n)
    },
    broadcast(n) {
      for (const set of byUser.values()) push(set, n)
    },
    async close() {
      for (const ws of wss.clients) ws.terminate()
      await new Promise<void>((resolve) => wss.close(() => resolve()))
      await new Promise<void>((resolve) => {
        http.close(() => resolve())
        http.closeAllConnections()
      })
    },
  }
}
