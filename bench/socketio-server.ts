/**
 * The same service on socket.io 4: WebSocket transport only (no polling),
 * the user id from the handshake's `auth`, one room per user.
 */
import { createServer, type Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server } from 'socket.io'
import type { BenchPayload, BenchServer } from './shared.js'

const room = (userId: string) => `user:${userId}`

export class SocketIoServer implements BenchServer {
  readonly #http: HttpServer
  readonly #io: Server

  constructor() {
    this.#http = createServer()
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

  async sendToUser(userId: string, p: BenchPayload): Promise<void> {
    this.#io.to(room(userId)).emit('notification', { type: 'notification', ...p, timestamp: new Date().toISOString() })
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
