/**
 * The same service on socket.io 4: WebSocket transport only (no polling),
 * the user id from the handshake's `auth`, one room per user, and the plain
 * ws server's HTTP publish route.
 */
import { createServer, type Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server } from 'socket.io'
import { publishRoute } from './plain-ws-server.js'
import type { BenchPayload, BenchServer } from './shared.js'

const room = (userId: string) => `user:${userId}`

export class SocketIoServer implements BenchServer {
  readonly #http: HttpServer
  readonly #io: Server

  constructor() {
    // socket.io hands every request outside its own path to this listener.
    this.#http = createServer(publishRoute((userId, p) => this.#send(userId, p)))
    this.#io = new Server(this.#http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false })
    this.#io.use((socket, next) => {
      const userId: unknown = socket.handshake.auth.userId
      if (typeof userId !== 'string' || userId === '') return next(new Error('unauthorized'))
      socket.data.userId = userId
      next()
    })
    this.#io.on('connection', (socket) => {
      void socket.join(room(socket.data.userId as string))
    })
  }

  listen(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#http.once('error', reject)
      this.#http.listen(port, '127.0.0.1', () => resolve((this.#http.address() as AddressInfo).port))
    })
  }

  async sendToUser(userId: string, p: BenchPayload): Promise<number> {
    return this.#send(userId, p)
  }

  /** Emits to the user's room; returns how many sockets are in it. */
  #send(userId: string, p: BenchPayload): number {
    this.#io.to(room(userId)).emit('notification', { type: 'notification', ...p, timestamp: new Date().toISOString() })
    return this.#io.sockets.adapter.rooms.get(room(userId))?.size ?? 0
  }

  async broadcast(p: BenchPayload): Promise<void> {
    this.#io.emit('notification', { type: 'notification', ...p, timestamp: new Date().toISOString() })
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#io.close(() => resolve())
      this.#http.closeAllConnections()
    })
  }
}
