/**
 * One belfry server process of the cluster phase (bench/cluster.ts), driven
 * over IPC: on the embedded SQLite store (the single-process reference), or
 * on PostgreSQL + Redis (one of several processes sharing a schema and a
 * channel). Publishes reach it over HTTP (bench/publisher.ts), its clients
 * are the load generators' (bench/loadgen.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { NotificationServer, PostgresStore, RedisBroker } from '../src/server/index.js'
import { serve } from './rpc.js'
import { API_KEY, SECRET } from './shared.js'

export type NodeConfig =
  | { store: 'sqlite' }
  | {
      store: 'postgres'
      pgUrl: string
      /** The PostgreSQL schema this cluster shares (a fresh one per scenario). */
      schema: string
      redisUrl: string
      /** The Redis channel this cluster shares. */
      channel: string
    }

let server: NotificationServer | undefined
let dir: string | undefined
/** Lines pino wrote at warn or above. */
const warnings: string[] = []
const logger = pino(
  { level: 'warn' },
  {
    write: (line: string) => {
      if (warnings.length < 20) warnings.push(line.trim())
    },
  },
)

serve({
  async start(config: NodeConfig) {
    if (config.store === 'sqlite') {
      dir = mkdtempSync(join(tmpdir(), 'belfry-bench-cluster-'))
      server = new NotificationServer({ secret: SECRET, apiKey: API_KEY, database: join(dir, 'belfry.db'), logger })
    } else {
      const [store, broker] = await Promise.all([
        PostgresStore.open(config.pgUrl, { schema: config.schema }),
        RedisBroker.connect(config.redisUrl, { channel: config.channel, logger }),
      ])
      server = new NotificationServer({ secret: SECRET, apiKey: API_KEY, store, broker, logger })
    }
    const { port } = await server.listen(0, '127.0.0.1')
    return { port, pid: process.pid }
  },

  /** CPU time used so far (µs), and this process's authenticated connections. */
  stats() {
    return { cpu: process.cpuUsage(), ...server?.stats() }
  },

  warnings: () => warnings,

  async stop() {
    await server?.close()
    server = undefined
    if (dir) rmSync(dir, { recursive: true, force: true })
    setTimeout(() => process.exit(0), 20)
    return { ok: true }
  },
})
