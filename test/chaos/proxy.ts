/**
 * A TCP proxy for fault injection between a client and the server, on
 * loopback only. It can
 *
 * - `reset()`: send RST to both ends of every connection (`resetAndDestroy`),
 *   as a NAT or load balancer that drops its state does;
 * - `refusing = true`: reset every new connection as soon as it is accepted,
 *   as a server that is down (the client's handshake fails with an error);
 * - `blackhole()`: stop forwarding in both directions without closing
 *   anything (no FIN, no RST): bytes, ends and closes are held back, so both
 *   ends see a half-open connection. New connections are accepted by the
 *   kernel but nothing gets through them either. `heal()` delivers what was
 *   held, in order, and forwards again — as TCP does once a route comes back.
 */
import { type AddressInfo, createServer, type Server, type Socket, connect as tcpConnect } from 'node:net'

type Held = Buffer | 'end' | 'destroy'

/** One direction of a proxied connection. */
class Pipe {
  readonly held: Held[] = []

  constructor(
    readonly from: Socket,
    readonly to: Socket,
    private readonly proxy: ChaosProxy,
  ) {
    from.on('data', (chunk: Buffer) => this.push(chunk))
    from.on('end', () => this.push('end'))
    from.on('close', () => this.push('destroy'))
  }

  push(item: Held): void {
    if (this.proxy.holding) {
      this.held.push(item)
      // Keep the proxy's own memory bounded: leave the rest in the kernel's buffers.
      if (typeof item !== 'string') this.from.pause()
      return
    }
    this.deliver(item)
  }

  deliver(item: Held): void {
    if (this.to.destroyed) return
    if (item === 'end') this.to.end()
    else if (item === 'destroy') this.to.destroy()
    else this.to.write(item)
  }

  flush(): void {
    for (const item of this.held.splice(0)) this.deliver(item)
    if (!this.from.destroyed) this.from.resume()
  }
}

export class ChaosProxy {
  #server: Server | undefined
  readonly #pipes = new Set<Pipe>()
  readonly #sockets = new Set<Socket>()
  holding = false
  refusing = false
  /** Connections accepted so far. */
  accepted = 0

  /** Where to forward; read on every new connection. */
  constructor(public target: { host: string; port: number }) {}

  async listen(): Promise<number> {
    const server = createServer((client) => this.#accept(client))
    this.#server = server
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return (server.address() as AddressInfo).port
  }

  /** RST to both ends of every open connection. */
  reset(): void {
    for (const s of [...this.#sockets]) {
      try {
        s.resetAndDestroy()
      } catch {
        s.destroy()
      }
    }
    for (const p of this.#pipes) p.held.length = 0
    this.#pipes.clear()
    this.#sockets.clear()
  }

  blackhole(): void {
    this.holding = true
    for (const p of this.#pipes) p.from.pause()
  }

  heal(): void {
    this.holding = false
    for (const p of [...this.#pipes]) {
      p.flush()
      if (p.from.destroyed && p.to.destroyed) this.#pipes.delete(p)
    }
  }

  async close(): Promise<void> {
    this.holding = false
    for (const s of this.#sockets) s.destroy()
    const server = this.#server
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  #accept(client: Socket): void {
    this.accepted++
    if (this.refusing) {
      client.on('error', () => {})
      client.resetAndDestroy()
      return
    }
    const upstream = tcpConnect(this.target.port, this.target.host)
    for (const s of [client, upstream]) {
      this.#sockets.add(s)
      s.on('error', () => s.destroy())
      s.once('close', () => this.#sockets.delete(s))
    }
    const pipes = [new Pipe(client, upstream, this), new Pipe(upstream, client, this)]
    for (const p of pipes) this.#pipes.add(p)
    client.once('close', () => {
      if (!this.holding) for (const p of pipes) this.#pipes.delete(p)
    })
    if (this.holding) client.pause()
  }
}

/**
 * A loopback port that this test owns and that resets every connection: what
 * a client meets while its server is down. Pointing clients here, rather than
 * at the dead server's freed port, keeps them from ever reaching another
 * test's server that happened to be given that port meanwhile.
 */
export async function tombstone(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const server = createServer((s) => {
    sockets.add(s)
    s.on('error', () => {})
    s.once('close', () => sockets.delete(s))
    s.resetAndDestroy()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}
