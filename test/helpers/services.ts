/**
 * Private PostgreSQL and Redis servers for the tests of the PostgreSQL store and
 * the Redis broker. Each instance is a real server (Debian's packages, found by
 * scripts/services.mjs) on a free port of 127.0.0.1, with its own temporary
 * directory; tests start, crash, restart and remove them.
 *
 * PostgreSQL refuses to run as root. As root (CI), `initdb` and `postgres` run as
 * the `postgres` user through `runuser -u postgres --`, on a data directory that
 * user owns; every signal goes to the postmaster itself (its PID from the data
 * directory's postmaster.pid), since runuser does not pass SIGINT on and a
 * SIGKILL of runuser would leave PostgreSQL running. Otherwise both run directly
 * as the current user.
 *
 * Tests isolate from each other by instance, or inside one instance by
 * PostgreSQL schema (the store's `schema` option) or Redis key prefix.
 *
 * Call stopAllServices() in an afterAll. Whatever is still running when the
 * process exits, or is ended by SIGTERM, SIGINT or SIGHUP (how vitest ends a
 * `forks` worker), is killed and removed then (see track() below). A process
 * that is SIGKILLed, or a worker thread that is terminated (vitest's `threads`
 * pool), leaves its servers running.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process'
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
// @ts-expect-error plain ES module script without types
import { ensureServices } from '../../scripts/services.mjs'

export interface ServiceInstance {
  /** The port on 127.0.0.1; the same across kill() and start(). */
  port: number
  /** Shuts the server down cleanly (resolves once it has exited). No-op when it is not running. */
  stop(): Promise<void>
  /** SIGKILLs the server: a crash, with no shutdown work. No-op when it is not running. */
  kill(): Promise<void>
  /** Starts the server again on the same port and data. No-op when it is running. */
  start(): Promise<void>
  /** Stops the server and removes its directory. The instance cannot be started again. */
  dispose(): Promise<void>
  /** What the server wrote to its stdout and stderr, across restarts (the last 256 KiB). */
  logs(): string
}

export interface PgInstance extends ServiceInstance {
  /** postgres://postgres@127.0.0.1:<port>/postgres (trust authentication, no password). */
  url: string
}

export interface RedisInstance extends ServiceInstance {
  /** redis://127.0.0.1:<port> */
  url: string
}

export interface PgOptions {
  /** More server settings, passed as `-c name=value` (e.g. { max_connections: 20 }). */
  settings?: Readonly<Record<string, string | number>> | undefined
  /** How long to wait for the server to accept connections; 15 s unless told. */
  readyTimeoutMs?: number | undefined
}

const READY_TIMEOUT_MS = 15_000
const STOP_TIMEOUT_MS = 15_000
const LOG_LIMIT = 256 * 1024
const isRoot = process.getuid?.() === 0

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const ensure = ensureServices as (names: string[]) => { postgres?: string; redis?: string }
let pgBin: string | undefined
let redisServer: string | undefined

/** The PostgreSQL bin directory; installs the package first when scripts/services.mjs can (root with apt-get). */
function postgresBin(): string {
  pgBin ??= ensure(['postgres']).postgres
  if (!pgBin) throw new Error('No PostgreSQL found: run `node scripts/services.mjs`')
  return pgBin
}

function redisBin(): string {
  redisServer ??= ensure(['redis']).redis
  if (!redisServer) throw new Error('No redis-server found: run `node scripts/services.mjs`')
  return redisServer
}

let postgresIds: { uid: number; gid: number } | undefined
function postgresUser(): { uid: number; gid: number } {
  if (!postgresIds) {
    try {
      const id = (flag: string) =>
        Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim())
      postgresIds = { uid: id('-u'), gid: id('-g') }
    } catch {
      throw new Error(
        'PostgreSQL refuses to run as root, and there is no `postgres` user to run it as. ' +
          "Debian's `postgresql` package creates one; or run the tests as another user.",
      )
    }
  }
  return postgresIds
}

/** A port that was free a moment ago (the kernel's pick for port 0). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => (port ? resolve(port) : reject(new Error('no port from the kernel'))))
    })
  })
}

/** A bounded log: the output of one server across its restarts. */
function logBuffer() {
  let text = ''
  return {
    append(chunk: Buffer | string) {
      text += chunk.toString()
      if (text.length > LOG_LIMIT) text = text.slice(-LOG_LIMIT)
    },
    text: () => text,
    /** What was written since `mark` (a length from an earlier text().length). */
    since: (mark: number) => text.slice(Math.min(mark, text.length)),
    tail(lines = 40) {
      return text.trimEnd().split('\n').slice(-lines).join('\n')
    },
  }
}
type Log = ReturnType<typeof logBuffer>

/** A spawned server process, with a promise of its exit. */
interface Running {
  child: ChildProcess
  exited: Promise<void>
  /** Set once the process has exited: a description of how. */
  exit?: string
}

function launch(command: string, args: string[], log: Log): Running {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout?.on('data', log.append)
  child.stderr?.on('data', log.append)
  const running: Running = {
    child,
    exited: new Promise((resolve) => {
      child.once('error', (error) => {
        running.exit = `could not be started: ${error.message}`
        resolve()
      })
      child.once('exit', (code, signal) => {
        running.exit = signal ? `was killed by ${signal}` : `exited with code ${code}`
        resolve()
      })
    }),
  }
  return running
}

/** Waits for `running` to exit, for at most `ms`; true when it did. */
async function exitedWithin(running: Running, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms)
  })
  const done = await Promise.race([running.exited.then(() => true as const), timeout])
  clearTimeout(timer)
  return done
}

const signal = (pid: number | undefined, sig: NodeJS.Signals) => {
  if (!pid) return
  try {
    process.kill(pid, sig)
  } catch {}
}

/** ppid and state of a process from /proc (Linux), or undefined when it is gone. */
function procStat(pid: number): { ppid: number; state: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // pid (comm) state ppid …; comm may hold spaces and parentheses.
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return { ppid: Number(ppid), state: state ?? '' }
  } catch {
    return undefined
  }
}

/** The children of `pid` (Linux, from /proc; empty elsewhere). */
function childrenOf(pid: number): number[] {
  let entries: string[] = []
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name))
  } catch {}
  return entries.map(Number).filter((candidate) => procStat(candidate)?.ppid === pid)
}

/** Waits until each of `pids` has exited (gone or a zombie), for at most `ms`. */
async function gone(pids: number[], ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (pids.every((pid) => (procStat(pid)?.state ?? 'Z') === 'Z')) return
    await sleep(20)
  }
}

/* ------------------------------------------------------------------ registry */

interface Tracked {
  dispose(): Promise<void>
  /** Synchronous, for the 'exit' handler: kills the server and removes its directory. */
  killNow(): void
}

const live = new Set<Tracked>()
let hooked = false

function killAllNow(): void {
  for (const instance of live) instance.killNow()
  live.clear()
}

/**
 * On SIGTERM, SIGINT or SIGHUP: kill every server, then let the signal do what it
 * would have done (when nothing else listens for it). Vitest ends a worker of its
 * `forks` pool with SIGTERM, which does not run 'exit' handlers.
 */
function onSignal(sig: NodeJS.Signals): void {
  killAllNow()
  for (const name of SIGNALS) process.off(name, onSignal)
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig)
}
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const

function track(instance: Tracked): void {
  live.add(instance)
  if (hooked) return
  hooked = true
  // A test that failed before its dispose(), a worker that ends: nothing is left behind.
  process.on('exit', killAllNow)
  for (const name of SIGNALS) process.on(name, onSignal)
}

/** Stops and removes every PostgreSQL and Redis instance this process started. For an afterAll. */
export async function stopAllServices(): Promise<void> {
  const all = [...live]
  const results = await Promise.allSettled(all.map((instance) => instance.dispose()))
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected')
  if (failed) throw failed.reason
}

/* ---------------------------------------------------------------- PostgreSQL */

const BIND_FAILED = /could not bind|could not create any TCP\/IP sockets|Address already in use/i
// A crashed server's processes still hold its shared memory, or its lock file is being checked.
const STILL_IN_USE = /is still in use|lock file .* already exists/i

/**
 * true when the server on `url` answers, and is the one on `data`: the port was
 * free a moment ago, but another test process may have taken it since (its
 * server would answer as well, ours having failed to bind).
 */
async function pgReady(url: string, data: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 })
  client.on('error', () => {})
  try {
    await client.connect()
    const { rows } = await client.query<{ data_directory: string }>('SHOW data_directory')
    return rows[0]?.data_directory === data
  } catch {
    return false
  } finally {
    await client.end().catch(() => {})
  }
}

/**
 * Starts a private PostgreSQL (fresh data directory, trust authentication, user
 * and database `postgres`, fsync off) on a free port of 127.0.0.1 and waits
 * until it answers (and is the server on its own data directory).
 */
export async function startPostgres(options: PgOptions = {}): Promise<PgInstance> {
  const bin = postgresBin()
  const dir = mkdtempSync(join(tmpdir(), 'belfry-pg-'))
  const data = join(dir, 'data')
  const log = logBuffer()
  const readyTimeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS
  const settings = Object.entries(options.settings ?? {}).flatMap(([name, value]) => ['-c', `${name}=${value}`])

  /** A command line, as the postgres user when root. */
  const as = (program: string, args: string[]): [string, string[]] =>
    isRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, program), ...args]] : [join(bin, program), args]

  let running: Running | undefined
  let postmaster: number | undefined
  let disposed = false

  const instance: PgInstance & Tracked = {
    url: '',
    port: 0,
    logs: () => log.text(),

    async start() {
      if (disposed) throw new Error('this PostgreSQL instance was disposed')
      if (running && !running.exit) return
      await boot(false)
    },

    async stop() {
      const current = running
      if (!current || current.exit) return
      // SIGINT: fast shutdown (disconnect clients, checkpoint, exit).
      signal(postmaster ?? postmasterPid(), 'SIGINT')
      if (!(await exitedWithin(current, STOP_TIMEOUT_MS))) {
        await instance.kill()
        throw new Error(
          `PostgreSQL on port ${instance.port} did not shut down within ${STOP_TIMEOUT_MS / 1000} s; killed it.\n${log.tail()}`,
        )
      }
    },

    async kill() {
      const current = running
      if (!current || current.exit) return
      const pid = postmaster ?? postmasterPid()
      if (!pid) {
        // Not started far enough to have written postmaster.pid: runuser passes SIGTERM on.
        current.child.kill('SIGTERM')
        await current.exited
        return
      }
      // The postmaster and the server processes it forked (backends, checkpointer…):
      // a crash of the whole server, so start() can follow at once and clients lose
      // their connections now rather than when the orphans notice. (No SIGSTOP to
      // hold the postmaster while they are listed: runuser would stop itself too.)
      // One forked meanwhile exits by itself on the postmaster's death.
      const servers = childrenOf(pid)
      signal(pid, 'SIGKILL')
      for (const child of servers) signal(child, 'SIGKILL')
      await current.exited
      await gone(servers, 5000)
    },

    async dispose() {
      if (disposed) return
      try {
        await instance.stop()
      } finally {
        disposed = true
        live.delete(instance)
        rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
      }
    },

    killNow() {
      if (running && !running.exit) {
        // SIGQUIT: immediate shutdown; the postmaster takes its processes down with it.
        const pid = postmaster ?? postmasterPid()
        if (pid) signal(pid, 'SIGQUIT')
        else running.child.kill('SIGTERM')
      }
      disposed = true
      try {
        rmSync(dir, { recursive: true, force: true })
      } catch {}
    },
  }

  function postmasterPid(): number | undefined {
    try {
      const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0])
      return Number.isInteger(pid) && pid > 0 ? pid : undefined
    } catch {
      return undefined
    }
  }

  /** Runs the postmaster until it accepts connections. On the first start, a port taken meanwhile means another port. */
  async function boot(first: boolean): Promise<void> {
    const deadline = Date.now() + readyTimeoutMs
    for (let attempt = 1; ; attempt++) {
      if (first) {
        instance.port = await freePort()
        instance.url = `postgres://postgres@127.0.0.1:${instance.port}/postgres`
      }
      const mark = log.text().length
      postmaster = undefined
      const args = ['-D', data, '-p', String(instance.port), '-h', '127.0.0.1', '-k', '', '-c', 'fsync=off', ...settings]
      const current = launch(...as('postgres', args), log)
      running = current
      let ready = false
      while (!current.exit && Date.now() < deadline) {
        if (await pgReady(instance.url, data)) {
          ready = true
          break
        }
        await sleep(50)
      }
      if (ready) {
        postmaster = postmasterPid()
        return
      }
      if (current.exit) {
        const output = log.since(mark)
        const retry = (first && BIND_FAILED.test(output) && attempt < 5) || STILL_IN_USE.test(output)
        if (retry && Date.now() < deadline) {
          await sleep(100)
          continue
        }
        throw new Error(`PostgreSQL ${current.exit} before accepting connections on port ${instance.port}.\n--- its log ---\n${log.tail()}`)
      }
      await instance.kill()
      throw new Error(
        `PostgreSQL did not accept connections on port ${instance.port} within ${readyTimeoutMs / 1000} s; killed it.\n--- its log ---\n${log.tail()}`,
      )
    }
  }

  track(instance)
  try {
    if (isRoot) {
      const { uid, gid } = postgresUser()
      chownSync(dir, uid, gid)
    }
    try {
      await promisify(execFile)(
        ...as('initdb', [
          '-D',
          data,
          '--auth=trust',
          '--username=postgres',
          '--encoding=UTF8',
          '--locale=C',
          '--no-sync',
          '--no-instructions',
        ]),
      )
    } catch (error) {
      const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string }
      throw new Error(`initdb failed for ${data}: ${(error as Error).message}\n${stdout}${stderr}`)
    }
    await boot(true)
  } catch (error) {
    instance.killNow()
    live.delete(instance)
    throw error
  }
  return instance
}

/* --------------------------------------------------------------------- Redis */

/**
 * true when a Redis on `port` answers, and is process `pid` (another test
 * process may have taken the port since it was free; see pgReady).
 */
function redisReady(port: number, pid: number | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    let reply = ''
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('INFO server\r\n'))
    socket.on('data', (chunk) => {
      reply += chunk.toString()
      // -LOADING … while it starts; else a bulk string holding process_id:<pid>.
      if (reply.startsWith('-')) done(false)
      const id = /process_id:(\d+)\r\n/.exec(reply)?.[1]
      if (id) done(Number(id) === pid)
    })
  })
}

/** Starts a private Redis (no persistence) on a free port of 127.0.0.1 and waits until it answers. */
export async function startRedis(): Promise<RedisInstance> {
  const bin = redisBin()
  const dir = mkdtempSync(join(tmpdir(), 'belfry-redis-'))
  const log = logBuffer()
  let running: Running | undefined
  let disposed = false

  const instance: RedisInstance & Tracked = {
    url: '',
    port: 0,
    logs: () => log.text(),

    async start() {
      if (disposed) throw new Error('this Redis instance was disposed')
      if (running && !running.exit) return
      await boot(false)
    },

    async stop() {
      const current = running
      if (!current || current.exit) return
      current.child.kill('SIGTERM')
      if (!(await exitedWithin(current, STOP_TIMEOUT_MS))) {
        await instance.kill()
        throw new Error(`Redis on port ${instance.port} did not shut down within ${STOP_TIMEOUT_MS / 1000} s; killed it.\n${log.tail()}`)
      }
    },

    async kill() {
      const current = running
      if (!current || current.exit) return
      current.child.kill('SIGKILL')
      await current.exited
    },

    async dispose() {
      if (disposed) return
      try {
        await instance.stop()
      } finally {
        disposed = true
        live.delete(instance)
        rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
      }
    },

    killNow() {
      if (running && !running.exit) running.child.kill('SIGKILL')
      disposed = true
      try {
        rmSync(dir, { recursive: true, force: true })
      } catch {}
    },
  }

  async function boot(first: boolean): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS
    for (let attempt = 1; ; attempt++) {
      if (first) {
        instance.port = await freePort()
        instance.url = `redis://127.0.0.1:${instance.port}`
      }
      const mark = log.text().length
      const args = [
        '--port',
        String(instance.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
        '--dir',
        dir,
      ]
      const current = launch(bin, args, log)
      running = current
      while (!current.exit && Date.now() < deadline) {
        if (await redisReady(instance.port, current.child.pid)) return
        await sleep(20)
      }
      if (current.exit) {
        if (first && /Address already in use/i.test(log.since(mark)) && attempt < 5 && Date.now() < deadline) continue
        throw new Error(`redis-server ${current.exit} before answering PING on port ${instance.port}.\n--- its log ---\n${log.tail()}`)
      }
      await instance.kill()
      throw new Error(
        `redis-server did not answer PING on port ${instance.port} within ${READY_TIMEOUT_MS / 1000} s; killed it.\n--- its log ---\n${log.tail()}`,
      )
    }
  }

  track(instance)
  try {
    await boot(true)
  } catch (error) {
    instance.killNow()
    live.delete(instance)
    throw error
  }
  return instance
}
