/**
 * The private PostgreSQL and Redis servers of test/helpers/services.ts: they
 * start, answer, crash (SIGKILL), start again on the same port and data, and go
 * away, including when the process that started them exits without cleaning up.
 */
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { startPostgres, startRedis, stopAllServices } from '../helpers/services.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

// The first start installs a missing server where scripts/services.mjs can (root with apt-get).
const FIRST_START_MS = 180_000

afterAll(() => stopAllServices())

/** Resolves once nothing accepts connections on 127.0.0.1:port (polling for up to 5 s). */
async function refused(port: number): Promise<boolean> {
  const deadline = Date.now() + 5000
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (!open) return true
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return false
}

async function pgClient(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url })
  client.on('error', () => {})
  await client.connect()
  return client
}

function redisClient(url: string): Redis {
  return new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null })
}

describe('private PostgreSQL', () => {
  it(
    'answers, keeps committed writes across a SIGKILL and a restart on the same port, and stops and goes away',
    async () => {
      const db = await startPostgres()
      expect(db.url).toBe(`postgres://postgres@127.0.0.1:${db.port}/postgres`)

      const first = await pgClient(db.url)
      expect((await first.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }])
      expect(Number((await first.query('SHOW server_version_num')).rows[0].server_version_num)).toBeGreaterThanOrEqual(150000)
      expect((await first.query('SHOW fsync')).rows[0].fsync).toBe('off')
      await first.query('CREATE TABLE kept (v text)')
      await first.query("INSERT INTO kept VALUES ('before the crash')")

      await db.kill()
      await expect(first.query('SELECT 1')).rejects.toThrow()
      expect(await refused(db.port)).toBe(true)
      expect(db.logs()).not.toContain('database system is shut down')

      await db.start()
      // A crash, not a shutdown: the restart had to recover.
      expect(db.logs()).toMatch(/not properly shut down|automatic recovery in progress/)
      const second = await pgClient(db.url)
      expect((await second.query('SELECT v FROM kept')).rows).toEqual([{ v: 'before the crash' }])
      await second.end()

      await db.stop()
      expect(db.logs()).toContain('database system is shut down')
      expect(await refused(db.port)).toBe(true)
      await db.start()
      const third = await pgClient(db.url)
      expect((await third.query('SELECT count(*)::int AS n FROM kept')).rows).toEqual([{ n: 1 }])
      await third.end()

      await db.dispose()
      expect(await refused(db.port)).toBe(true)
      await expect(db.start()).rejects.toThrow(/disposed/)
    },
    FIRST_START_MS,
  )
})

describe('private Redis', () => {
  it(
    'answers, restarts on the same port after a SIGKILL (empty: no persistence), and goes away',
    async () => {
      const server = await startRedis()
      expect(server.url).toBe(`redis://127.0.0.1:${server.port}`)

      const first = redisClient(server.url)
      await first.connect()
      expect(await first.set('greeting', 'hello')).toBe('OK')
      expect(await first.get('greeting')).toBe('hello')
      expect(await first.info('server')).toMatch(/redis_version:(\d+)/)
      expect(Number(/redis_version:(\d+)/.exec(await first.info('server'))?.[1])).toBeGreaterThanOrEqual(6) // the oldest the tests take (scripts/services.mjs, MIN_REDIS)
      first.disconnect()

      await server.kill()
      expect(await refused(server.port)).toBe(true)

      await server.start()
      const second = redisClient(server.url)
      await second.connect()
      expect(await second.ping()).toBe('PONG')
      expect(await second.get('greeting')).toBeNull()
      second.disconnect()

      await server.dispose()
      expect(await refused(server.port)).toBe(true)
    },
    FIRST_START_MS,
  )
})

describe('cleanup', () => {
  it('stopAllServices() stops and removes every instance still running', async () => {
    const [db, server] = await Promise.all([startPostgres(), startRedis()])
    await stopAllServices()
    expect(await refused(db.port)).toBe(true)
    expect(await refused(server.port)).toBe(true)
  })

  // 'exit': process.exit() with servers running. SIGTERM: how vitest ends a worker of its forks pool.
  // Concurrent: each runs in a process of its own.
  it.concurrent.each(['exit', 'SIGTERM'] as const)(
    'a process ended by %s without cleaning up leaves no server and no directory behind',
    async (ending) => {
      const script = `
      import { startPostgres, startRedis } from './test/helpers/services.ts'
      const [db, server] = await Promise.all([startPostgres(), startRedis()])
      console.log(JSON.stringify({ pg: db.port, redis: server.port }))
      if (process.argv.includes('exit')) process.exit(0)
      setInterval(() => {}, 1000)
    `
      // Its own TMPDIR, to see what it leaves there; traversable by the postgres user when root.
      const tmp = mkdtempSync(join(tmpdir(), 'belfry-services-test-'))
      chmodSync(tmp, 0o755)
      try {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, ending], {
          cwd: ROOT,
          env: { ...process.env, TMPDIR: tmp },
          stdio: ['ignore', 'pipe', 'pipe'],
        })
        let out = ''
        let err = ''
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString()
          if (ending === 'SIGTERM' && out.includes('\n')) child.kill('SIGTERM')
        })
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString()
        })
        const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
          child.once('exit', (...result) => resolve(result)),
        )
        // After cleaning up, the signal still ends the process as it would have.
        expect({ code, signal }, err).toEqual(ending === 'exit' ? { code: 0, signal: null } : { code: null, signal: 'SIGTERM' })
        const ports = JSON.parse(out) as { pg: number; redis: number }
        expect(await refused(ports.pg)).toBe(true)
        expect(await refused(ports.redis)).toBe(true)
        expect(readdirSync(tmp).filter((name) => name.startsWith('belfry-'))).toEqual([])
      } finally {
        rmSync(tmp, { recursive: true, force: true })
      }
    },
    30_000,
  )
})

describe('scripts/services.mjs', () => {
  it('refuses a redis-server older than 6, saying which version it found and which it needs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-old-redis-'))
    try {
      const fake = join(dir, 'redis-server')
      writeFileSync(fake, '#!/bin/sh\necho "Redis server v=5.0.7 sha=00000000:0 malloc=jemalloc bits=64"\n')
      chmodSync(fake, 0o755)
      const run = (path: string) =>
        spawnSync(process.execPath, ['scripts/services.mjs'], { cwd: ROOT, env: { ...process.env, REDIS_SERVER: path }, encoding: 'utf8' })
      const old = run(fake)
      expect(old.status).toBe(1)
      expect(old.stderr).toBe(`REDIS_SERVER=${fake} is Redis 5; the tests need 6 or later\n`)
      const found = spawnSync(process.execPath, ['scripts/services.mjs'], { cwd: ROOT, encoding: 'utf8' })
      expect(found.status, found.stderr).toBe(0)
      const current = run(/redis-server: (.+)/.exec(found.stdout)![1]!)
      expect(current.status, current.stderr).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
