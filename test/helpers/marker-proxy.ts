import { type AddressInfo, createServer, type Server, type Socket, connect as tcpConnect } from 'node:net'

/** One proxied connection: the client's socket and the one to the target. */
export interface Proxied {
  client: Socket
  upstream: Socket
}

/**
 * A TCP proxy on loopback that forwards both ways and, once armed with a
 * marker, singles out the connection whose client next sends it: from then on
 * that connection's replies go to `reply` instead of straight to the client
 * (to withhold, delay or cut them). Armed again, it singles out the next one.
 */
export class MarkerProxy {
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  #marker: string | undefined
  /** Connections singled out so far. */
  marked = 0

  constructor(
    private readonly target: number,
    private readonly reply: (chunk: Buffer, connection: Proxied) => void,
  ) {
    this.#server = createServer((client) => this.#accept(client))
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve))
    return (this.#server.address() as AddressInfo).port
  }

  /** Singles out the connection whose client next sends `marker` (compared without case). */
  arm(marker: string): void {
    this.#marker = marker.toLowerCase()
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  #accept(client: Socket): void {
    const upstream = tcpConnect(this.target, '127.0.0.1')
    for (const s of [client, upstream]) {
      this.#sockets.add(s)
      s.on('error', () => s.destroy())
      s.once('close', () => this.#sockets.delete(s))
    }
    let marked = false
    client.on('data', (chunk: Buffer) => {
      if (this.#marker !== undefined && chunk.toString('latin1').toLowerCase().includes(this.#marker)) {
        this.#marker = undefined
        this.marked++
        marked = true
      }
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => (marked ? this.reply(chunk, { client, upstream }) : client.write(chunk)))
    client.once('close', () => upstream.destroy())
    upstream.once('close', () => client.destroy())
  }
}
