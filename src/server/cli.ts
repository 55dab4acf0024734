#!/usr/bin/env node
/**
 * `belfry-server` / `npm run server`: the reference server, configured by the
 * environment (PORT, HOST, BELFRY_SECRET, BELFRY_API_KEY, BELFRY_DB or BELFRY_DATABASE_URL,
 * BELFRY_REDIS_URL, BELFRY_TOPICS_CLAIM, BELFRY_METRICS, BELFRY_METRICS_TOKEN, BELFRY_RETENTION_DAYS,
 * BELFRY_RETENTION_MAX_PER_USER, BELFRY_DRAIN_MS, BELFRY_REDIS_CHANNEL,
 * BELFRY_IDEMPOTENCY_KEY_TTL_MS; `SERVER_USAGE` in config.ts says each). `--dev` (what
 * `npm start` uses) runs on the published dev secrets, on 127.0.0.1 unless HOST
 * says otherwise, and serves the demo page. `-h`/`--help` prints the usage
 * (SERVER_USAGE); any other argument exits with 2. `belfry-server admin …` calls the
 * admin API of a running server (admin-cli.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { pino } from 'pino'
import { admin } from './admin-cli.js'
import { RedisBroker } from './broker/redis.js'
import { type CliConfig, devWarning, displayUrl, readArgs, readConfig, SERVER_USAGE, UsageError } from './config.js'
import { NotificationServer } from './notification-server.js'
import { serveDemo } from './static.js'
import { PostgresStore } from './store/postgres.js'
import { topicsClaim } from './topics.js'

/** listen()'s errors for a host that is no interface of this machine, or no name that resolves. */
const HOST_ERRORS = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL'])

async function main(): Promise<void> {
  if (process.argv[2] === 'admin') {
    const write = (stream: NodeJS.WriteStream) => (s: string) => void stream.write(s)
    process.exitCode = await admin(process.argv.slice(3), process.env, write(process.stdout), write(process.stderr))
    return
  }
  let config: CliConfig
  try {
    if (readArgs(process.argv.slice(2)).help) {
      process.stdout.write(SERVER_USAGE)
      return
    }
    config = readConfig(process.env, process.argv.slice(2))
  } catch (error) {
    const usage = error instanceof UsageError
    process.stderr.write(`belfry-server: ${(error as Error).message}${usage ? ' (see belfry-server --help)' : ''}\n`)
    process.exit(usage ? 2 : 1)
  }
  const log = pino({ name: 'belfry' })
  const { secret, apiKey, database, dev, topicsClaim: claim, databaseUrl, redisUrl, redisChannel, metrics, retention } = config
  const fallback = dev ? serveDemo() : (_req: IncomingMessage, res: ServerResponse) => res.writeHead(404).end()
  // Each rejects with one line when its service cannot be reached: the process exits with it.
  const store = databaseUrl === undefined ? undefined : await PostgresStore.open(databaseUrl)
  const broker =
    redisUrl === undefined
      ? undefined
      : await RedisBroker.connect(redisUrl, { logger: log, channel: redisChannel }).catch(async (error: unknown) => {
          await store?.close()
          throw error
        })
  const server = new NotificationServer({
    secret,
    apiKey,
    database,
    store,
    broker,
    dev,
    logger: log,
    fallback,
    retention,
    drainMs: config.drainMs,
    idempotencyKeyTtlMs: config.idempotencyKeyTtlMs,
    ...(claim !== undefined && { authorizeSubscribe: topicsClaim(claim) }),
    metrics,
  })
  const { port } = await server.listen(config.port, config.host).catch((error: NodeJS.ErrnoException) => {
    // Node's words ("getaddrinfo ENOTFOUND …") name no variable: every other bad value is told by its name.
    if (config.host !== undefined && HOST_ERRORS.has(error.code ?? '')) {
      throw new Error(
        `HOST must be a name or address of this machine (e.g. 127.0.0.1, 0.0.0.0, ::), got "${config.host}" (${error.message})`,
      )
    }
    throw error
  })
  log.info(
    {
      port,
      host: config.host,
      store: databaseUrl ? 'postgres' : database,
      broker: redisUrl ? 'redis' : 'in-process',
      dev,
      metrics: metrics !== undefined,
    },
    'listening',
  )
  if (dev) process.stderr.write(devWarning({ ...config, port }))
  process.stdout.write(`belfry ${config.dev ? 'demo' : 'server'}: ${displayUrl(config.host, port)}/\n`)
  // SIGTERM (a deploy) drains: closes spread over BELFRY_DRAIN_MS. SIGINT (Ctrl-C), or a second
  // signal during the drain, closes what is left at once.
  let stopping = false
  const stop = (signal: string) => {
    const drain = signal === 'SIGTERM' && !stopping
    log.info({ signal, drain }, 'shutting down')
    const closed = drain ? server.drain() : server.close()
    if (stopping) return
    stopping = true
    closed.then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
}

main().catch((error: unknown) => {
  // Start-up failures (port in use, database directory missing): one line, not a stack trace.
  process.stderr.write(`belfry-server: ${(error as Error).message}\n`)
  process.exit(1)
})
