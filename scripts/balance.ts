/**
 * A small round-robin TCP load balancer, for trying several belfry processes
 * on one machine (`npm run balance -- 3000 3001 3002 3003`: listen on 3000,
 * forward to the others) and for the cluster tests. Each new connection goes
 * to the next backend; a backend that refuses the connection is skipped, as a
 * load balancer with health checks would skip it. WebSocket upgrades pass
 * through untouched (it forwards bytes). Not for production: use nginx,
 * HAProxy or your platform's balancer there.
 */
import { connect, createServer, type Server, type Socket } from 'node:net'
import { pathToFileURL } from 'node:url'

export interface Balancer {
  /** The port it listens on. */
  port: number
  /** Connections each backend has taken so far, by port. */
  taken: Map<number, number>
  /** Stops listening and cuts every connection. */
  close(): Promise<void>
}

/** Listens on `port` (0: a free one) of 127.0.0.1 and spreads connections over `backends` (ports of 127.0.0.1). */
export async function startBalancer(backends: readonly number[], port = 0): Promise<Balancer> {
  if (backends.length === 0) throw new TypeError('startBalancer: give at least one backend port')
  const sockets = new Set<Socket>()
  const taken = new Map(backends.map((b) => [b, 0]))
  let next = 0

  /** Tries backends from the next in turn; the client is closed when none takes it. */
  const forward = (client: Socket, tries: number): void => {
    if (tries >= backends.length) {
      client.destroy()
      return
    }
    const backend = backends[next++ % backends.length]!
    const upstream = connect(backend, '127.0.0.1')
    sockets.add(upstream)
    let connected = false
    upstream.on('error', () => {
      sockets.delete(upstream)
      if (connected) client.destroy()
      else forward(client, tries + 1) // refused: the next backend
    })
    upstream.once('connect', () => {
      connected = true
      taken.set(backend, (taken.get(backend) ?? 0) + 1)
      client.on('error', () => upstream.destroy())
      client.pipe(upstream)
      upstream.pipe(client)
      client.resume()
      upstream.once('close', () => {
        sockets.delete(upstream)
        client.destroy()
      })
      client.once('close', () => upstream.destroy())
    })
  }

  const server: Server = createServer({ pauseOnConnect: true }, (client) => {
    sockets.add(client)
    client.once('close', () => sockets.delete(client))
    client.on('error', () => {})
    forward(client, 0)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  return {
    port: typeof address === 'object' && address ? address.port : port,
    taken,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [listen, ...backends] = process.argv.slice(2).map(Number)
  if (listen === undefined || backends.length === 0 || [listen, ...backends].some((p) => !Number.isInteger(p) || p < 0 || p > 65535)) {
    process.stderr.write('usage: npm run balance -- <listen port> <backend port> [<backend port> …]\n')
    process.exit(1)
  }
  const b = await startBalancer(backends, listen)
  process.stdout.write(`balancing http://127.0.0.1:${b.port}/ over ${backends.map((p) => `:${p}`).join(' ')}\n`)
}
