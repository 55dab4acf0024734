/** Configuration of the `belfry-server` command, read from the environment. */

import { MAX_IDEMPOTENCY_KEY_TTL_MS, MAX_RETENTION_DAYS, MAX_TIMER_MS } from './options.js'
import { redactUrl } from './redact.js'

/**
 * Documented dev-mode secrets. Dev mode always uses these (never secrets from
 * the environment), and outside dev mode they are refused, so nothing dev
 * mode mints is valid on a production server.
 */
export const DEV_SECRET = 'belfry-dev-secret-not-for-production'
export const DEV_API_KEY = 'belfry-dev-key'
/** Dev mode's SQLite file when BELFRY_DB is unset: never the file a production server in the same directory opens. */
export const DEV_DATABASE = './belfry-dev.db'
/** Either published dev value: outside dev mode neither may sign tokens or guard a route (the secret, the API key, the metrics token). */
export const isDevValue = (v: unknown): boolean => v === DEV_SECRET || v === DEV_API_KEY

/** What a bearer key (the API key, the metrics token) must be, as its messages say it. */
export const BEARER_KEY_RULE = 'at least 8 characters, visible ASCII without spaces'

/**
 * Whether `key` can be sent as `Authorization: Bearer <key>`: the header's key
 * is one run of visible ASCII, so a key with a space (a passphrase) or beyond
 * ASCII (a header is read as Latin-1) could never match.
 */
export function isBearerKey(key: string): boolean {
  return /^[\x21-\x7e]{8,}$/.test(key)
}

/** A key described without showing it: its length, and whether it has characters a bearer key cannot. */
export function keyShape(key: string): string {
  return `${key.length} characters${/[^\x21-\x7e]/.test(key) ? ', with spaces, controls or non-ASCII ones' : ''}`
}

export interface CliConfig {
  port: number
  /** Interface to listen on; absent: all of them. Dev mode: 127.0.0.1 unless HOST is set. */
  host?: string
  secret: string
  apiKey: string
  database: string
  /** PostgreSQL in place of the SQLite file (BELFRY_DATABASE_URL). */
  databaseUrl?: string
  /** Redis as the broker between processes (BELFRY_REDIS_URL). */
  redisUrl?: string
  /** The Redis channel of this deployment's processes (BELFRY_REDIS_CHANNEL); absent: the broker's default, `belfry:events`. */
  redisChannel?: string
  dev: boolean
  /** The token claim that lists the topics a user may subscribe to (BELFRY_TOPICS_CLAIM); absent: any topic. */
  topicsClaim?: string
  /** Prometheus metrics on /metrics (BELFRY_METRICS=1): behind BELFRY_METRICS_TOKEN (`{ token }`), or the API key (`true`). */
  metrics?: true | { token: string }
  /** Inbox retention (BELFRY_RETENTION_DAYS, BELFRY_RETENTION_MAX_PER_USER); absent: keep everything. */
  retention?: { days?: number; maxPerUser?: number }
  /** How long a SIGTERM spreads the 1001 closes over, in ms (BELFRY_DRAIN_MS); absent: the server's default, 5000. */
  drainMs?: number
  /** How long a publish's Idempotency-Key is remembered, in ms (BELFRY_IDEMPOTENCY_KEY_TTL_MS); absent: the server's default, 24 hours. */
  idempotencyKeyTtlMs?: number
  /** Dev mode: the variables it ignored (their values are never used there). */
  ignored: string[]
}

/**
 * A whole number written in decimal digits, or NaN. Not `Number()` alone: it
 * reads "" and " " as 0, "0x10" as 16 and "1e3" as 1000.
 */
const whole = (text: string): number => (/^\d+$/.test(text) ? Number(text) : Number.NaN)

/** A number written in decimal digits, a fraction allowed ("1.5"), or NaN. */
export const decimal = (text: string): number => (/^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN)

/** `belfry-server --help`. */
export const SERVER_USAGE = `Usage: belfry-server [--dev]
       belfry-server admin <command> [options]   (see belfry-server admin --help)

Runs the notification server, configured by the environment:
  PORT                       port to listen on (default 3000; 0: any free port)
  HOST                       interface to listen on (default: all; --dev: 127.0.0.1)
  BELFRY_SECRET              HS256 secret of user tokens, at least 16 characters (required)
  BELFRY_API_KEY             the publish API's bearer token, at least 8 characters, visible ASCII (required)
  BELFRY_DB                  SQLite file (default ./belfry.db; --dev: ./belfry-dev.db)
  BELFRY_DATABASE_URL        postgres:// URL, in place of BELFRY_DB
  BELFRY_REDIS_URL           redis:// URL: the broker between several processes
  BELFRY_REDIS_CHANNEL       its channel, one per deployment on a Redis server (default belfry:events)
  BELFRY_TOPICS_CLAIM        token claim listing the topics a user may subscribe to
  BELFRY_METRICS             1: Prometheus metrics on /metrics
  BELFRY_METRICS_TOKEN       bearer token of /metrics (default: BELFRY_API_KEY)
  BELFRY_RETENTION_DAYS      how long inbox entries are kept, in days (default: forever)
  BELFRY_RETENTION_MAX_PER_USER
                             how many inbox entries a user keeps (default: all)
  BELFRY_DRAIN_MS            how long SIGTERM spreads the closes over, in ms (default 5000)
  BELFRY_IDEMPOTENCY_KEY_TTL_MS
                             how long an Idempotency-Key is remembered, in ms (default 24 h)

Options:
  --dev                      dev mode: the published dev secrets (never BELFRY_SECRET or
                             BELFRY_API_KEY), 127.0.0.1, the demo page; not for production.
                             With BELFRY_SECRET or BELFRY_API_KEY set, it refuses BELFRY_DB,
                             BELFRY_DATABASE_URL and BELFRY_REDIS_URL (production's store)
  -h, --help                 this text

Commands:
  admin                      calls the admin API of a running server
`

/** A mistake in the command line (exit code 2). */
export class UsageError extends Error {}

/** The command line of the server: `--dev`, `-h`/`--help`; throws a {@link UsageError} naming any other argument. */
export function readArgs(argv: readonly string[]): { dev: boolean; help: boolean } {
  const unknown = argv.find((arg) => !['--dev', '-h', '--help'].includes(arg))
  if (unknown !== undefined) throw new UsageError(`unknown argument "${unknown.slice(0, 64)}"`)
  return { dev: argv.includes('--dev'), help: argv.includes('-h') || argv.includes('--help') }
}

/** Reads the configuration; throws an Error whose message tells the operator what to set. */
export function readConfig(env: NodeJS.ProcessEnv, argv: readonly string[]): CliConfig {
  const { dev } = readArgs(argv)
  const port = whole(env.PORT || '3000')
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`PORT must be a port number from 0 to 65535 (0: any free port), got "${env.PORT?.slice(0, 32)}"`)
  }
  const fallback = dev ? DEV_DATABASE : './belfry.db'
  if (env.BELFRY_DB === '') throw new Error(`BELFRY_DB is empty: set it to a file path, or unset it for ${fallback}`)
  // An environment that holds a production secret is production's: so is its store. Dev mode serves any user's
  // inbox to whoever asks (/api/dev/token): it takes no store or broker from such an environment, only its own file.
  const secrets = (['BELFRY_SECRET', 'BELFRY_API_KEY'] as const).filter((name) => env[name])
  const stores = (['BELFRY_DB', 'BELFRY_DATABASE_URL', 'BELFRY_REDIS_URL'] as const).filter((name) => env[name] !== undefined)
  if (dev && secrets.length > 0 && stores.length > 0) {
    throw new Error(
      `dev mode takes no store from an environment that holds ${secrets.join(' and ')}: ${stores.join(', ')} may be production's, ` +
        `whose inboxes dev mode would hand to anyone. Unset ${stores.length > 1 ? 'them' : 'it'} (dev mode then uses ${DEV_DATABASE}), or run without --dev`,
    )
  }
  const { BELFRY_DATABASE_URL: databaseUrl, BELFRY_REDIS_URL: redisUrl } = env
  if (databaseUrl !== undefined && env.BELFRY_DB !== undefined) {
    throw new Error('BELFRY_DB (a SQLite file) and BELFRY_DATABASE_URL (PostgreSQL) are both set: choose one')
  }
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new Error(`BELFRY_DATABASE_URL must be a postgres:// or postgresql:// URL, got "${redactUrl(databaseUrl).slice(0, 80)}"`)
  }
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    throw new Error(`BELFRY_REDIS_URL must be a redis:// or rediss:// URL, got "${redactUrl(redisUrl).slice(0, 80)}"`)
  }
  const redisChannel = env.BELFRY_REDIS_CHANNEL
  // Redis takes any bytes; a name the logs can show, and no typo of whitespace, is what a deployment means.
  if (redisChannel !== undefined && !/^[\x21-\x7e]{1,128}$/.test(redisChannel)) {
    throw new Error(
      `BELFRY_REDIS_CHANNEL must be 1–128 visible ASCII characters (no spaces), e.g. belfry:staging, got "${redisChannel.slice(0, 64)}"`,
    )
  }
  if (redisChannel !== undefined && redisUrl === undefined)
    throw new Error('BELFRY_REDIS_CHANNEL is set without BELFRY_REDIS_URL: set both, or neither')
  const database = env.BELFRY_DB ?? fallback
  const host = env.HOST || (dev ? '127.0.0.1' : undefined)
  const claim = env.BELFRY_TOPICS_CLAIM
  if (claim !== undefined && !/^[\w:.-]{1,64}$/.test(claim)) {
    throw new Error(`BELFRY_TOPICS_CLAIM must name a token claim (letters, digits, _ : . -), got "${claim.slice(0, 64)}"`)
  }
  const metrics = readMetrics(env)
  const retention = readRetention(env)
  const drainMs = env.BELFRY_DRAIN_MS ? whole(env.BELFRY_DRAIN_MS) : undefined
  if (drainMs !== undefined && !(Number.isSafeInteger(drainMs) && drainMs >= 0 && drainMs <= MAX_TIMER_MS)) {
    throw new Error(
      `BELFRY_DRAIN_MS must be a whole number of milliseconds from 0 to ${MAX_TIMER_MS} (0: close at once), got "${env.BELFRY_DRAIN_MS?.slice(0, 32)}"`,
    )
  }
  const ttl = env.BELFRY_IDEMPOTENCY_KEY_TTL_MS
  const idempotencyKeyTtlMs = ttl ? whole(ttl) : undefined
  if (
    idempotencyKeyTtlMs !== undefined &&
    !(Number.isSafeInteger(idempotencyKeyTtlMs) && idempotencyKeyTtlMs >= 1 && idempotencyKeyTtlMs <= MAX_IDEMPOTENCY_KEY_TTL_MS)
  ) {
    throw new Error(
      `BELFRY_IDEMPOTENCY_KEY_TTL_MS must be a whole number of milliseconds from 1 to ${MAX_IDEMPOTENCY_KEY_TTL_MS} (a year), got "${ttl!.slice(0, 32)}"`,
    )
  }
  const common = {
    port,
    ...(host && { host }),
    database,
    ...(databaseUrl && { databaseUrl }),
    ...(redisUrl && { redisUrl }),
    ...(redisChannel && { redisChannel }),
    dev,
    ...(claim && { topicsClaim: claim }),
    ...(metrics && { metrics }),
    ...(retention && { retention }),
    ...(drainMs !== undefined && { drainMs }),
    ...(idempotencyKeyTtlMs !== undefined && { idempotencyKeyTtlMs }),
  }
  if (dev) {
    const ignored = (['BELFRY_SECRET', 'BELFRY_API_KEY'] as const).filter((name) => env[name])
    return { ...common, secret: DEV_SECRET, apiKey: DEV_API_KEY, ignored }
  }
  const missing = (['BELFRY_SECRET', 'BELFRY_API_KEY'] as const).filter((name) => !env[name])
  if (missing.length > 0) {
    throw new Error(
      `${missing.join(' and ')} must be set (BELFRY_SECRET signs user tokens, BELFRY_API_KEY guards the publish API). ` +
        'For a local demo with dev defaults, run `belfry-server --dev`.',
    )
  }
  const secret = env.BELFRY_SECRET!
  const apiKey = env.BELFRY_API_KEY!
  if (secret.length < 16) throw new Error('BELFRY_SECRET must be at least 16 characters')
  if (!isBearerKey(apiKey)) throw new Error(`BELFRY_API_KEY must be ${BEARER_KEY_RULE} (a bearer token); got ${keyShape(apiKey)}`)
  if (isDevValue(secret) || isDevValue(apiKey)) {
    throw new Error('BELFRY_SECRET and BELFRY_API_KEY must not be the published dev defaults outside dev mode')
  }
  if (typeof metrics === 'object' && isDevValue(metrics.token)) {
    throw new Error('BELFRY_METRICS_TOKEN must not be a published dev default outside dev mode')
  }
  return { ...common, secret, apiKey, ignored: [] }
}

/** BELFRY_METRICS (1 or true: on; 0, false or unset: off) and BELFRY_METRICS_TOKEN. */
function readMetrics(env: NodeJS.ProcessEnv): true | { token: string } | undefined {
  const { BELFRY_METRICS: flag, BELFRY_METRICS_TOKEN: token } = env
  if (flag !== undefined && !['0', '1', 'true', 'false'].includes(flag)) {
    throw new Error(`BELFRY_METRICS must be 1 (on) or 0 (off), got "${flag.slice(0, 16)}"`)
  }
  const on = flag === '1' || flag === 'true'
  if (token === undefined) return on || undefined
  // A token set while metrics are not asked for would suggest they are on, guarded by it.
  if (flag === undefined) throw new Error('BELFRY_METRICS_TOKEN is set but BELFRY_METRICS is not: set BELFRY_METRICS=1 to serve /metrics')
  if (!isBearerKey(token)) {
    throw new Error(`BELFRY_METRICS_TOKEN must be ${BEARER_KEY_RULE} (unset, /metrics takes BELFRY_API_KEY); got ${keyShape(token)}`)
  }
  return on ? { token } : undefined
}

/** BELFRY_RETENTION_DAYS (days, a fraction allowed) and BELFRY_RETENTION_MAX_PER_USER (entries); empty is unset. */
function readRetention(env: NodeJS.ProcessEnv): CliConfig['retention'] {
  const { BELFRY_RETENTION_DAYS: d, BELFRY_RETENTION_MAX_PER_USER: m } = env
  const days = d ? decimal(d) : undefined
  const maxPerUser = m ? whole(m) : undefined
  if (days !== undefined && !(days > 0 && days <= MAX_RETENTION_DAYS)) {
    throw new Error(`BELFRY_RETENTION_DAYS must be a number of days > 0 and ≤ ${MAX_RETENTION_DAYS}, got "${d!.slice(0, 32)}"`)
  }
  if (maxPerUser !== undefined && !(Number.isSafeInteger(maxPerUser) && maxPerUser >= 1)) {
    throw new Error(`BELFRY_RETENTION_MAX_PER_USER must be a whole number from 1 to ${Number.MAX_SAFE_INTEGER}, got "${m!.slice(0, 32)}"`)
  }
  if (days === undefined && maxPerUser === undefined) return undefined
  return { ...(days !== undefined && { days }), ...(maxPerUser !== undefined && { maxPerUser }) }
}

/** The URL to print for a server listening on `host` (all interfaces when absent): an IPv6 address in brackets. */
export function displayUrl(host: string | undefined, port: number): string {
  const shown = host === undefined || host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host
  return `http://${shown}:${port}`
}

/** The warning dev mode prints at start, on stderr. */
export function devWarning(config: CliConfig): string {
  const lines = [
    '*** belfry DEV MODE — not for production ***',
    `Anyone who can reach ${displayUrl(config.host, config.port)} can mint a token for any user (GET /api/dev/token)`,
    `and gets the publish key. Secrets are the published dev defaults; tokens minted here are refused outside dev mode.`,
  ]
  if (config.host && !isLoopback(config.host)) lines.push(`HOST=${config.host} is not a loopback address: other machines can reach it.`)
  if (config.ignored.length > 0) lines.push(`${config.ignored.join(' and ')} from the environment ignored.`)
  return `${lines.join('\n')}\n`
}

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || host.startsWith('127.')
