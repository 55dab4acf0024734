/**
 * The baseline: what the article's NotificationService does, on `ws`, in our
 * own words. A map from user id to that user's open sockets, filled by an
 * `auth` frame whose `userId` is taken at its word (the article leaves token
 * checking for later), and two ways to send: to one user, or to everyone.
 * Each send serialises the notification once and writes that string to every
 * socket concerned. Nothing is stored: a user who is offline misses it.
 * An application publishes over HTTP as well: `POST /api/notifications`.
 */
import { createServer, type RequestListener, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import Database from 'better-sqlite3'
import WebSocket, { WebSocketServer } from 'ws'
import type { BenchPayload, BenchServer } from './shared.js'

export class PlainWsServer implements BenchServer {
  readonly #http: Server
  readonly #wss: WebSocketServer
  /** userId → that user's open sockets. */
  readonly #users = new Map<string, Set<WebSocket>>()
  /** With `commit`: each publish is committed to SQLite before it is sent. */
  readonly #commit: ((userIds: readonly string[], message: string) => void) | undefined

  /**
   * `commit`: a SQLite file. Each publish is then written (the message once, an entry for each
   * recipient) and committed before it is sent, in WAL mode with synchronous=NORMAL as belfry's
   * store: plain ws plus the one durable commit belfry's guarantee needs, nothing else (no seq, no
   * auth, no replay). A baseline for what belfry costs beyond that commit (BENCH_WS_COMMIT=1).
   */
  constructor({ commit }: { commit?: string } = {}) {
    if (commit) {
      const db = new Database(commit)
      db.pragma('journal_mode = WAL')
      db.pragma('synchronous = NORMAL')
      // IF NOT EXISTS: the storm restarts the server on the same file.
      db.exec(`CREATE TABLE IF NOT EXISTS messages (no INTEGER PRIMARY KEY, body TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS entries (user_id TEXT NOT NULL, message_no INTEGER NOT NULL)`)
      const message = db.prepare('INSERT INTO messages (body) VALUES (?)')
      const entry = db.prepare('INSERT INTO entries (user_id, message_no) VALUES (?, ?)')
      this.#commit = db.transaction((userIds: readonly string[], body: string) => {
        const no = message.run(body).lastInsertRowid
        for (const userId of userIds) entry.run(userId, no)
      })
    }
    this.#http = createServer(publishRoute((userId, p) => this.#send(userId, p)))
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

  async sendToUser(userId: string, p: BenchPayload): Promise<number> {
    return this.#send(userId, p)
  }

  /** Sends to the user's open sockets; returns how many. */
  #send(userId: string, p: BenchPayload): number {
    const sockets = this.#users.get(userId)
    if (!sockets && !this.#commit) return 0
    const message = JSON.stringify({ type: 'notification', ...p, timestamp: new Date().toISOString() })
    // Durable before it is sent, the user online or not, as belfry's publish.
    this.#commit?.([userId], message)
    if (!sockets) return 0
    let sent = 0
    for (const ws of sockets) {
      if (ws.readyState !== WebSocket.OPEN) continue
      ws.send(message)
      sent++
    }
    return sent
  }

  async broadcast(p: BenchPayload): Promise<void> {
    const message = JSON.stringify({ type: 'notification', ...p, timestamp: new Date().toISOString() })
    this.#commit?.([...this.#users.keys()], message)
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

/**
 * `POST /api/notifications` with a JSON body `{ userId, title, body, priority,
 * data }`: hands the notification to `send` and answers 201 `{ recipients }`.
 * As thin as the article's route: parse, send, answer; no key is checked and
 * nothing is stored. The socket.io server serves the same route.
 */
export function publishRoute(send: (userId: string, p: BenchPayload) => number): RequestListener {
  return (req, res) => {
    if (req.method !== 'POST' || req.url !== '/api/notifications') {
      res.writeHead(404).end()
      return
    }
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      let input: Partial<BenchPayload> & { userId?: unknown }
      try {
        input = JSON.parse(Buffer.concat(chunks).toString())
      } catch {
        input = {}
      }
      const { userId, title, body, priority, data } = input
      if (typeof userId !== 'string') {
        res.writeHead(400).end()
        return
      }
      const recipients = send(userId, { title, body, priority, data } as BenchPayload)
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ recipients }))
    })
  }
}
