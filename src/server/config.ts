/** Configuration of the `belfry-server` command, read from the environment. */

/** Documented dev-mode defaults. Never used outside dev mode. */
export const DEV_SECRET = 'belfry-dev-secret-not-for-production'
export const DEV_API_KEY = 'belfry-dev-key'

export interface CliConfig {
  port: number
  /** Interface to listen on; absent: all of them. */
  host?: string
  secret: string
  apiKey: string
  database: string
  dev: boolean
}

/** Reads the configuration; throws an Error whose message tells the operator what to set. */
export function readConfig(env: NodeJS.ProcessEnv, argv: readonly string[]): CliConfig {
  const dev = argv.includes('--dev')
  const port = Number(env.PORT || 3000)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got "${env.PORT}"`)
  const missing = (['BELFRY_SECRET', 'BELFRY_API_KEY'] as const).filter((name) => !env[name])
  if (!dev && missing.length > 0) {
    throw new Error(
      `${missing.join(' and ')} must be set (BELFRY_SECRET signs user tokens, BELFRY_API_KEY guards the publish API). ` +
        'For a local demo with dev defaults, run `npm start` instead.',
    )
  }
  const secret = env.BELFRY_SECRET || DEV_SECRET
  if (secret.length < 16) throw new Error('BELFRY_SECRET must be at least 16 characters')
  const apiKey = env.BELFRY_API_KEY || DEV_API_KEY
  if (apiKey.length < 8) throw new Error('BELFRY_API_KEY must be at least 8 characters')
  return { port, ...(env.HOST && { host: env.HOST }), secret, apiKey, database: env.BELFRY_DB || './belfry.db', dev }
}

/** The URL to print for a server listening on `host` (all interfaces when absent): an IPv6 address in brackets. */
export function displayUrl(host: string | undefined, port: number): string {
  const shown = host === undefined || host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host
  return `http://${shown}:${port}`
}
