import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import WebSocket, { WebSocketServer } from 'ws'

/**
 * The article's service and browser client, re-created as the article shows them
 * (docs/protocol.md, "The article's protocol"), for review tests: the service's class
 * with its in-memory map and its three ways of sending, and the browser client's
 * `onopen`/`onmessage` handlers (the browser's WebSocket API, which `ws` implements).
 */
export interface ArticleNote {
  title: string
  body: string
  priority?: string
  [field: string]: unknown
}

/** The article's `NotificationService`, line for line (its console output left out). */
export class NotificationService {
  wss: WebSocketServer
  userConnections = new Map<unknown, Set<WebSocket>>()

  constructor(server: Server) {
    this.wss = new WebSocketServer({ server }) // the article's `new WebSocket.Server({ server })`
    this.wss.on('connection', (ws, req) => {
      this.handleConnection(ws, req)
    })
  }

  handleConnection(ws: WebSocket, _req: unknown): void {
    let userId: unknown = null
    ws.on('message', (data) => {
      try {
        const message = JSON.parse(String(data))
        if (message.type === 'auth') {
          userId = message.userId // In production, validate token
          this.registerUser(userId, ws)
          ws.send(JSON.stringify({ type: 'auth_success', message: 'Connected to notification service' }))
        }
      } catch {
        // console.error('Error handling message:', error)
      }
    })
    ws.on('close', () => {
      if (userId) this.unregisterUser(userId, ws)
    })
  }

  registerUser(userId: unknown, ws: WebSocket): void {
    if (!this.userConnections.has(userId)) this.userConnections.set(userId, new Set())
    this.userConnections.get(userId)!.add(ws)
  }

  unregisterUser(userId: unknown, ws: WebSocket): void {
    const connections = this.userConnections.get(userId)
    if (connections) {
      connections.delete(ws)
      if (connections.size === 0) this.userConnections.delete(userId)
    }
  }

  sendToUser(userId: unknown, notification: ArticleNote): void {
    const connections = this.userConnections.get(userId)
    if (!connections) return
    const message = JSON.stringify({ type: 'notification', ...notification, timestamp: new Date().toISOString() })
    for (const ws of connections) if (ws.readyState === WebSocket.OPEN) ws.send(message)
  }

  sendToMultipleUsers(userIds: unknown[], notification: ArticleNote): void {
    for (const userId of userIds) this.sendToUser(userId, notification)
  }

  broadcast(notification: ArticleNote): void {
    const message = JSON.stringify({ type: 'notification', ...notification, timestamp: new Date().toISOString() })
    for (const connections of this.userConnections.values()) {
      for (const ws of connections) if (ws.readyState === WebSocket.OPEN) ws.send(message)
    }
  }
}

/** The article's service on `http.createServer()`, listening on 127.0.0.1 (port 0, or the one given). */
export async function startArticleService(port = 0): Promise<{
  service: NotificationService
  url: string
  port: number
  close(): Promise<void>
}> {
  const server = createServer()
  const service = new NotificationService(server)
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()))
  const bound = (server.address() as AddressInfo).port
  return {
    service,
    url: `ws://127.0.0.1:${bound}`,
    port: bound,
    async close() {
      for (const ws of service.wss.clients) ws.terminate()
      await new Promise<void>((resolve) => service.wss.close(() => resolve()))
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
  }
}

/** The article's browser client: what `showNotification` printed, and the socket. */
export interface ArticleBrowserClient {
  ws: WebSocket
  shown: string[]
  /** Every frame the page parsed. */
  frames: Record<string, unknown>[]
  closed: Promise<number>
}

/** The article's client-side code, as written there, against `url`. */
export function articleBrowserClient(url: string, userId: string, token: string): ArticleBrowserClient {
  const shown: string[] = []
  const frames: Record<string, unknown>[] = []
  const ws = new WebSocket(url)
  ws.on('error', () => {})
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)))

  function showNotification(title: unknown, body: unknown, priority: unknown) {
    shown.push(`[${priority}] ${title}: ${body}`)
  }
  ws.onopen = () => {
    ws.send(JSON.stringify({ type: 'auth', userId, token }))
  }
  ws.onmessage = (event) => {
    const data = JSON.parse(String(event.data))
    frames.push(data)
    if (data.type === 'notification') showNotification(data.title, data.body, data.priority)
  }
  return { ws, shown, frames, closed }
}
