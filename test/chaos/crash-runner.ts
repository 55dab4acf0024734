/**
 * A belfry server process for crash-points.test.ts: NotificationServer on a SqliteStore
 * (or a PostgresStore, with `pg`) with the options the CLI does not expose (fanOutBatch,
 * pruneBatch), and an optional kill point: the process SIGKILLs itself right after the n-th
 * call of a store method has resolved (committed, not yet acted on), or right before it starts.
 *
 * Configured by CRASH_RUNNER (JSON, see RunnerConfig). Prints `belfry server: <url>` once listening.
 */
import { pino } from 'pino'
import { NotificationServer, PostgresStore, RedisBroker, SqliteStore, type Store } from '../../src/server/index.js'

export interface RunnerConfig {
  secret: string
  apiKey: string
  /** SQLite file. */
  db?: string
  /** PostgreSQL URL (with `schema`) in place of `db`. */
  pg?: string
  schema?: string
  redis?: string
  fanOutBatch?: number
  pruneBatch?: number
  retention?: { days?: number; maxPerUser?: number }
  /** SIGKILL after the n-th call of `op` that did something has resolved ('after'), or as it is called ('before'). */
  kill?: { op: string; nth: number; when?: 'after' | 'before' }
}

const config = JSON.parse(process.env.CRASH_RUNNER ?? '{}') as RunnerConfig

function armKill(store: Store, kill: NonNullable<RunnerConfig['kill']>): void {
  const target = store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
  const original = target[kill.op]!.bind(store)
  let calls = 0
  target[kill.op] = async (...args: unknown[]) => {
    if (kill.when === 'before') {
      if (++calls === kill.nth) process.kill(process.pid, 'SIGKILL')
      return original(...args)
    }
    const result = await original(...args)
    // A fanOut that found no job, a prune batch that removed nothing, did nothing.
    const did = result !== undefined && !(kill.op === 'prune' && (result as { removed: number }).removed === 0)
    if (did && ++calls === kill.nth) process.kill(process.pid, 'SIGKILL')
    return result
  }
}

async function main(): Promise<void> {
  const store: Store = config.pg
    ? await PostgresStore.open(config.pg, { schema: config.schema, fanOutBatch: config.fanOutBatch, pruneBatch: config.pruneBatch })
    : new SqliteStore(config.db!, { fanOutBatch: config.fanOutBatch, pruneBatch: config.pruneBatch })
  if (config.kill) armKill(store, config.kill)
  const broker = config.redis ? await RedisBroker.connect(config.redis) : undefined
  const server = new NotificationServer({
    secret: config.secret,
    apiKey: config.apiKey,
    store,
    broker,
    retention: config.retention,
    logger: pino({ level: 'warn' }, pino.destination(2)),
  })
  const { port } = await server.listen(0, '127.0.0.1')
  process.stdout.write(`belfry server: http://127.0.0.1:${port}/\n`)
}

main().catch((error: unknown) => {
  process.stderr.write(`runner: ${(error as Error).stack}\n`)
  process.exit(1)
})
