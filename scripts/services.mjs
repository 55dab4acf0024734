#!/usr/bin/env node
// Finds the PostgreSQL (≥ 15) and Redis servers that the tests of the
// PostgreSQL store and the Redis broker start for themselves
// (test/helpers/services.ts), and prints their paths.
// PostgreSQL: PG_BIN (a directory holding `postgres` and `initdb`), then
// /usr/lib/postgresql/<highest>/bin, then `pg_config --bindir`.
// Redis: REDIS_SERVER (the `redis-server` executable), then PATH, then
// /usr/bin/redis-server.
// With one missing, where Debian's apt-get can be used as root, it installs the
// `postgresql` or `redis-server` package; otherwise it fails with what to
// install. No test tool downloads a server of its own.
import { execFileSync } from 'node:child_process'
import { accessSync, constants, readdirSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { pathToFileURL } from 'node:url'

const MIN_POSTGRES = 15
const MIN_REDIS = 6
const PG_ROOT = '/usr/lib/postgresql'

const executable = (path) => {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The major version of the `postgres` in `bin` (`postgres (PostgreSQL) 15.18 …` → 15), or undefined. */
function postgresMajor(bin) {
  try {
    const out = execFileSync(join(bin, 'postgres'), ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    const major = /\(PostgreSQL\)\s+(\d+)/.exec(out)?.[1]
    return major ? Number(major) : undefined
  } catch {
    return undefined
  }
}

const serverBin = (bin) => executable(join(bin, 'postgres')) && executable(join(bin, 'initdb'))
const usable = (bin) => serverBin(bin) && (postgresMajor(bin) ?? 0) >= MIN_POSTGRES

/** The directory of the PostgreSQL ≥ 15 server binaries (`postgres`, `initdb`), or undefined. */
export function findPostgres() {
  const fromEnv = process.env.PG_BIN
  if (fromEnv) {
    if (!serverBin(fromEnv)) throw new Error(`PG_BIN=${fromEnv} is not a directory holding executable postgres and initdb`)
    const major = postgresMajor(fromEnv)
    if ((major ?? 0) < MIN_POSTGRES)
      throw new Error(`PG_BIN=${fromEnv} holds PostgreSQL ${major ?? '(unknown)'}; the tests need ${MIN_POSTGRES} or later`)
    return fromEnv
  }
  let versions = []
  try {
    versions = readdirSync(PG_ROOT)
      .filter((name) => /^\d+$/.test(name) && Number(name) >= MIN_POSTGRES)
      .sort((a, b) => Number(b) - Number(a))
  } catch {}
  for (const version of versions) {
    const bin = join(PG_ROOT, version, 'bin')
    if (usable(bin)) return bin
  }
  try {
    const bin = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    if (bin && usable(bin)) return bin
  } catch {}
  return undefined
}

/** The major version `redis-server --version` reports ("Redis server v=7.0.15 …"), or undefined. */
function redisMajor(path) {
  try {
    const out = execFileSync(path, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    const major = /\bv=(\d+)\./.exec(out)?.[1]
    return major ? Number(major) : undefined
  } catch {
    return undefined
  }
}

/** The path of a `redis-server` ≥ 6, or undefined. */
export function findRedis() {
  const fromEnv = process.env.REDIS_SERVER
  if (fromEnv) {
    if (!executable(fromEnv)) throw new Error(`REDIS_SERVER=${fromEnv} is not an executable file`)
    const major = redisMajor(fromEnv)
    if ((major ?? 0) < MIN_REDIS)
      throw new Error(`REDIS_SERVER=${fromEnv} is Redis ${major ?? '(unknown version)'}; the tests need ${MIN_REDIS} or later`)
    return fromEnv
  }
  const onPath = (process.env.PATH ?? '')
    .split(delimiter)
    .filter(Boolean)
    .map((dir) => join(dir, 'redis-server'))
  return [...onPath, '/usr/bin/redis-server'].find((path) => executable(path) && (redisMajor(path) ?? 0) >= MIN_REDIS)
}

const SERVICES = {
  postgres: {
    find: findPostgres,
    pkg: 'postgresql',
    what: `PostgreSQL ${MIN_POSTGRES} or later`,
    env: 'set PG_BIN to the directory holding its postgres and initdb',
  },
  redis: {
    find: findRedis,
    pkg: 'redis-server',
    what: `Redis ${MIN_REDIS} or later (redis-server)`,
    env: 'set REDIS_SERVER to a redis-server executable',
  },
}

function canInstall() {
  if (process.getuid?.() !== 0) return false
  try {
    execFileSync('apt-get', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

function install(packages) {
  process.stderr.write(
    `Installing Debian package${packages.length > 1 ? 's' : ''} ${packages.map((p) => `\`${p}\``).join(', ')} (apt-get)…\n`,
  )
  // Waits for the dpkg lock instead of failing when another apt-get holds it.
  const lock = ['-o', 'DPkg::Lock::Timeout=300']
  const options = { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }
  execFileSync('apt-get', [...lock, 'update', '-qq'], options)
  execFileSync('apt-get', [...lock, 'install', '-y', '-qq', ...packages], options)
}

/**
 * Finds each named service ('postgres', 'redis'); installs the missing ones when
 * it runs as root where apt-get exists, else throws with what to install.
 * Resolves to { postgres?: bindir, redis?: path }.
 */
export function ensureServices(names = ['postgres', 'redis']) {
  const found = {}
  const missing = []
  for (const name of names) {
    const path = SERVICES[name].find()
    if (path) found[name] = path
    else missing.push(name)
  }
  if (missing.length === 0) return found
  if (!canInstall()) {
    const lines = missing.map((name) => {
      const s = SERVICES[name]
      return `  ${s.what}: Debian/Ubuntu \`sudo apt-get install -y ${s.pkg}\`, or ${s.env}`
    })
    throw new Error(`The PostgreSQL store and Redis broker tests need servers that are not installed:\n${lines.join('\n')}`)
  }
  install(missing.map((name) => SERVICES[name].pkg))
  for (const name of missing) {
    const path = SERVICES[name].find()
    if (!path)
      throw new Error(`apt-get installed \`${SERVICES[name].pkg}\`, but ${SERVICES[name].what} was not found; ${SERVICES[name].env}.`)
    found[name] = path
  }
  return found
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    const found = ensureServices()
    process.stdout.write(`postgres: ${found.postgres}\nredis-server: ${found.redis}\n`)
  } catch (error) {
    process.stderr.write(`${error.message}\n`)
    process.exit(1)
  }
}
