/**
 * The baseline: what the article's NotificationService does, on `ws`, in our
 * own words. A map from user id to that user's open sockets, filled by an
 * `auth` frame whose `userId` is taken at its word (the article leaves token
 * checking for later), and two ways to send: to one user, or to everyone.
 * Each send serialises the notification once and writes that string to every
 * socket concerned. Nothing is stored: a user who is offline misses it.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import WebSocket, { WebSocketServer } from 'ws'
import type { BenchPayload, BenchServer } from './shared.js'

export class PlainWsServer implements BenchServer {
  readonly #http: Server
  readonly #wss: WebSocketServer
  /** userId → that user's open sockets. */
  readonly #users = new Map<string, Set<WebSocket>>()

  constructor() {
    this.#http = createServer()
    this.#wss = new WebSocketServer({ server: this.#http, perMessageDeflate: false })
    this.#wss.on('connection', (ws) => this.#accept(ws))
  }

  listen(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#http.once('error', reject)
      this.#http.listen(port, '127.0.0.1', () => resolve((this.#http.address() as AddressInfo).port))
    })
  }

  #accept(ws: WebSocket): void {
    let userId: string | undefined
    ws.on('message', (data) => {
      let message: { type?: unknown; userId?: unknown }
      try {
        message = JSON.parse(data.toString())
      } catch {
        return
      }
      if (message.type === 'auth' && typeof message.userId === 'string' && userId === undefined) {
        userId = message.userId
        let sockets = this.#users.get(userId)
        if (!sockets) {
          sockets = new Set()
          this.#users.set(userId, sockets)
        }
        sockets.add(ws)
        ws.send(JSON.stringify({ type: 'auth_success', message: 'Connected to notification service' }))
      }
    })
    ws.on('close', () => {
      if (userId === undefined) return
      const sockets = this.#users.get(userId)
      sockets?.delete(ws)
      if (sockets?.size === 0) this.#users.delete(userId)
    })
    ws.on('error', () => {})
  }

  async sendToUser(userId: string, p: BenchPayload): Promise<void> {
    const sockets = this.#users.get(userId)
    if (!sockets) return
    const message = JSON.stringify({ type: 'notification', ...p, timestamp: new Date().toISOString() })
    for (const ws of sockets) if (ws.readyState === WebSocket.OPEN) ws.send(message)
  }

  async broadcast(p: BenchPayload): Promise<void> {
    const message = JSON.stringify({ type: 'notification', ...p, timestamp: new Date().toISOString() })
    for (const sockets of this.#users.values()) {
      for (const ws of sockets) if (ws.readyState === WebSocket.OPEN) ws.send(message)
    }
  }

  close(): Promise<void> {
    for (const sockets of this.#users.values()) for (const ws of sockets) ws.close(1001, 'server shutting down')
    this.#users.clear()
    return new Promise((resolve) => {
      this.#wss.close()
      this.#http.close(() => resolve())
      this.#http.closeAllConnections()
    })
  }
}
