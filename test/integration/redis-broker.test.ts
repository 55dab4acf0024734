/**
 * RedisBroker against a private redis-server: the broker contract, with each
 * node a connection of its own (another server process's view), and what a
 * network broker adds: failing fast, losing the connection and getting it back,
 * stray messages on the channel.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { BrokerEvent } from '../../src/server/broker/broker.js'
import { RedisBroker } from '../../src/server/broker/redis.js'
import { brokerContract } from '../contract/broker.js'
import { type RedisInstance, startRedis } from '../helpers/services.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** A port nothing listens on. */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}
const silent = pino({ level: 'silent' })
const notification = (n: number): BrokerEvent => ({ kind: 'notification', shared: `{"id":"n${n}"`, deliveries: [{ userId: 'u1', seq: n }] })
/** Open sockets and timers of this process, to show a broker leaves none behind. */
const handles = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'Timeout').length

let redis: RedisInstance
beforeAll(async () => {
  redis = await startRedis()
})
afterAll(async () => {
  await redis?.dispose()
})

brokerContract('RedisBroker', async () => {
  const nodes: RedisBroker[] = []
  return {
    node: async () => {
      const broker = await RedisBroker.connect(redis.url, { logger: silent })
      nodes.push(broker)
      return broker
    },
    dispose: async () => {
      await Promise.all(nodes.map((n) => n.close()))
    },
  }
})

describe('RedisBroker', () => {
  it('does not take a stalled event loop for a silent Redis: a publish answered meanwhile succeeds, the broker stays up', async () => {
    const broker = await RedisBroker.connect(redis.url, { logger: silent })
    try {
      const publishing = broker.publish([notification(1)])
      // The loop stalls past the publish's 1 s: its timer fires before the reply waiting in the socket is read.
      const end = Date.now() + 1500
      while (Date.now() < end) {}
      await expect(publishing).resolves.toBeUndefined()
      expect(broker.up).toBe(true)
    } finally {
      await broker.close()
    }
  })

  it('rejects at once, in one line, when nothing listens, and leaves no socket or timer behind', async () => {
    const port = await freePort()
    const before = handles()
    const started = Date.now()
    const error = await RedisBroker.connect(`redis://127.0.0.1:${port}`, { logger: silent }).catch((e: unknown) => e)
    expect(Date.now() - started).toBeLessThan(2000)
    expect(error).toBeInstanceOf(Error)
    const { message } = error as Error
    expect(message).toMatch(new RegExp(`^cannot reach Redis at redis://127\\.0\\.0\\.1:${port}/?: connect ECONNREFUSED`))
    expect(message).not.toContain('\n')
    expect(handles()).toBeLessThanOrEqual(before)
  })

  it('gives up on a server that accepts but never answers, after connectTimeout, and hangs up', async () => {
    // Reads and discards what it is sent, never answers.
    const accepted: Socket[] = []
    const mute = createServer((socket) => accepted.push(socket.resume())).listen(0, '127.0.0.1')
    await once(mute, 'listening')
    const { port } = mute.address() as { port: number }
    try {
      const before = handles()
      const started = Date.now()
      const error = await RedisBroker.connect(`redis://127.0.0.1:${port}`, { logger: silent, connectTimeout: 300 }).catch((e: unknown) => e)
      expect(Date.now() - started).toBeLessThan(1500)
      expect((error as Error).message).toMatch(
        new RegExp(`^cannot reach Redis at redis://127\\.0\\.0\\.1:${port}/?: no answer within 300 ms$`),
      )
      // Both connections were made, and both hung up: the server's ends close too.
      expect(accepted).toHaveLength(2)
      await vi.waitFor(() => expect(accepted.every((s) => s.closed)).toBe(true))
      expect(handles()).toBeLessThanOrEqual(before)
    } finally {
      for (const socket of accepted) socket.destroy()
      mute.close()
    }
  })

  it('closes both connections: nothing keeps the process alive, ready() then rejects', async () => {
    const before = handles()
    const broker = await RedisBroker.connect(redis.url, { logger: silent })
    expect(broker.up).toBe(true)
    await broker.ready()
    await broker.close()
    expect(broker.up).toBe(false)
    await expect(broker.ready()).rejects.toThrow(/closed/)
    await expect(broker.publish([notification(1)])).rejects.toThrow(/closed/)
    expect(handles()).toBeLessThanOrEqual(before)
  })

  it('lets a process that connected, published and closed exit on its own', async () => {
    const script = [
      `import { pino } from 'pino'`,
      `import { RedisBroker } from './src/server/broker/redis.ts'`,
      `const broker = await RedisBroker.connect(${JSON.stringify(redis.url)}, { logger: pino({ level: 'silent' }) })`,
      `await broker.publish([{ kind: 'read', userId: 'u1', frame: '{}' }])`,
      `await broker.close()`,
    ].join('\n')
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, stdio: 'inherit' })
    const timer = setTimeout(() => child.kill('SIGKILL'), 8000)
    const [code, signal] = await once(child, 'exit')
    clearTimeout(timer)
    expect({ code, signal }).toEqual({ code: 0, signal: null })
  })

  it('sends one Redis message per publish call: a batch is one JSON array', async () => {
    const channel = `belfry:test:${Date.now()}`
    const raw = new Redis(redis.url)
    const messages: string[] = []
    raw.on('message', (_ch: string, m: string) => messages.push(m))
    await raw.subscribe(channel)
    const broker = await RedisBroker.connect(redis.url, { channel, logger: silent })
    try {
      const batch = [notification(1), notification(2), notification(3)]
      await broker.publish(batch)
      await broker.publish([notification(4)])
      await vi.waitFor(() => expect(messages).toHaveLength(2))
      expect(JSON.parse(messages[0]!)).toEqual(batch)
      expect(JSON.parse(messages[1]!)).toEqual([notification(4)])
    } finally {
      await broker.close()
      await raw.quit()
    }
  })

  it('drops a malformed message with a warning and keeps delivering', async () => {
    const channel = `belfry:test:${Date.now()}`
    const lines: string[] = []
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) })
    const broker = await RedisBroker.connect(redis.url, { channel, logger })
    const raw = new Redis(redis.url)
    try {
      const got: BrokerEvent[] = []
      broker.subscribe((e) => got.push(e))
      const badCatchUp = '[{"kind":"notification","shared":"{}","deliveries":[],"catchUp":[1]}]'
      const badStamp = '[{"kind":"read","userId":"u","frame":"{}","deployment":7}]'
      for (const garbage of ['not json {', '{"kind":"notification"}', '[{"kind":"nope"}]', '[1]', 'null', badCatchUp, badStamp])
        await raw.publish(channel, garbage)
      await broker.publish([notification(1)])
      await vi.waitFor(() => expect(got).toEqual([notification(1)]))
      expect(lines.filter((l) => l.includes('dropped a malformed message'))).toHaveLength(7)
      expect(broker.up).toBe(true)
    } finally {
      await broker.close()
      await raw.quit()
    }
  })

  it('a handler that throws does not keep the event from the others', async () => {
    const broker = await RedisBroker.connect(redis.url, { channel: `belfry:test:${Date.now()}`, logger: silent })
    try {
      const got: BrokerEvent[] = []
      broker.subscribe(() => {
        throw new Error('boom')
      })
      broker.subscribe((e) => got.push(e))
      await broker.publish([notification(1), notification(2)])
      await vi.waitFor(() => expect(got).toEqual([notification(1), notification(2)]))
    } finally {
      await broker.close()
    }
  })

  it('reports down then up when its subscription is killed (CLIENT KILL TYPE pubsub), and delivers again', async () => {
    const channel = `belfry:test:${Date.now()}`
    const [publisher, subscriber] = [
      await RedisBroker.connect(redis.url, { channel, logger: silent }),
      await RedisBroker.connect(redis.url, { channel, logger: silent }),
    ]
    const admin = new Redis(redis.url)
    try {
      const statuses: boolean[] = []
      subscriber.onStatus((up) => statuses.push(up))
      const got: BrokerEvent[] = []
      subscriber.subscribe((e) => got.push(e))
      await publisher.publish([notification(1)])
      await vi.waitFor(() => expect(got).toHaveLength(1))

      expect(Number(await admin.client('KILL', 'TYPE', 'pubsub'))).toBeGreaterThanOrEqual(2)
      await vi.waitFor(() => expect(statuses).toContain(false))
      await vi.waitFor(() => expect(statuses).toEqual([false, true]), { timeout: 5000 })
      expect(subscriber.up).toBe(true)
      // Once `true` is reported the subscription is confirmed: the next publish arrives.
      await publisher.publish([notification(2)])
      await vi.waitFor(() => expect(got).toEqual([notification(1), notification(2)]))
    } finally {
      await Promise.all([publisher.close(), subscriber.close()])
      await admin.quit()
    }
  })

  it('survives a Redis restart: down, publish rejects at once, then up and delivering again', async () => {
    const own = await startRedis()
    const [publisher, subscriber] = [
      await RedisBroker.connect(own.url, { logger: silent }),
      await RedisBroker.connect(own.url, { logger: silent }),
    ]
    try {
      const statuses: boolean[] = []
      subscriber.onStatus((up) => statuses.push(up))
      const got: BrokerEvent[] = []
      subscriber.subscribe((e) => got.push(e))
      await publisher.publish([notification(1)])
      await vi.waitFor(() => expect(got).toHaveLength(1))

      await own.kill()
      await vi.waitFor(() => expect(statuses).toEqual([false]))
      expect(subscriber.up).toBe(false)
      await expect(subscriber.ready()).rejects.toThrow(/lost/)
      const started = Date.now()
      await expect(publisher.publish([notification(2)])).rejects.toThrow(/^redis broker: publish failed: /)
      expect(Date.now() - started).toBeLessThan(500)

      await own.start()
      await vi.waitFor(() => expect(statuses).toEqual([false, true]), { timeout: 5000 })
      expect(subscriber.up).toBe(true)
      await subscriber.ready()
      // The publisher reconnects on its own schedule: retry until it is back.
      await vi.waitFor(() => publisher.publish([notification(3)]), { timeout: 5000, interval: 100 })
      await vi.waitFor(() => expect(got).toEqual([notification(1), notification(3)]))
    } finally {
      await Promise.all([publisher.close(), subscriber.close()])
      await own.dispose()
    }
  })

  it('closes cleanly while Redis is down, stopping its reconnection timers', async () => {
    const own = await startRedis()
    const before = handles()
    const broker = await RedisBroker.connect(own.url, { logger: silent })
    const statuses: boolean[] = []
    broker.onStatus((up) => statuses.push(up))
    await own.kill()
    await vi.waitFor(() => expect(statuses).toEqual([false]))
    await broker.close()
    await broker.close()
    expect(handles()).toBeLessThanOrEqual(before)
    await own.dispose()
  })

  it("never writes the Redis password to the log, even at debug, when a reconnection's AUTH fails", async () => {
    // Regression: ioredis's ReplyError for a refused AUTH carries `command: { name: 'auth', args: [password] }`, and the broker logged it whole.
    const own = await startRedis()
    const password = 'belfry-redis-pass-Q7'
    const admin = new Redis(own.url)
    const lines: string[] = []
    const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) })
    let broker: RedisBroker | undefined
    try {
      await admin.config('SET', 'requirepass', password)
      broker = await RedisBroker.connect(own.url.replace('redis://', `redis://:${password}@`), { logger: log })
      expect(broker.up).toBe(true)
      // The password is rotated (or Redis restarted without it): the broker's reconnections fail their AUTH.
      await admin.config('SET', 'requirepass', 'another-password-1')
      await admin.client('KILL', 'TYPE', 'pubsub')
      await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
      await vi.waitFor(() => expect(lines.some((l) => l.includes('WRONGPASS'))).toBe(true), { timeout: 5000 }) // the failed AUTH is logged…
      expect(lines.filter((l) => l.includes(password))).toEqual([]) // …without its arguments
      const logged = JSON.parse(lines.find((l) => l.includes('WRONGPASS'))!) as { err: Record<string, unknown> }
      expect(logged.err).toMatchObject({ type: 'ReplyError', command: 'auth' }) // but with the command's name
    } finally {
      await broker?.close()
      admin.disconnect()
      await own.dispose()
    }
  }, 15_000)
})

/** Connections Redis has open, the watcher's own included. */
const clients = async (watcher: Redis) =>
  String(await watcher.call('CLIENT', 'LIST'))
    .trim()
    .split('\n').length

describe('RedisBroker.connect: a bad option is a TypeError that names it', () => {
  it('refuses a logger without pino’s methods, naming it, and leaves no connection open', async () => {
    const watcher = new Redis(redis.url)
    const before = await clients(watcher)
    const error = await RedisBroker.connect(redis.url, { logger: {} as never }).then(
      (broker) => broker,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(TypeError)
    expect((error as Error).message).toMatch(/logger/)
    // Whatever it opened is closed again.
    await vi.waitFor(async () => expect(await clients(watcher)).toBe(before), { timeout: 5000 })
    watcher.disconnect()
  })

  it('refuses a connectTimeout that is no delay in setTimeout’s range, naming it (not "no answer within NaN ms")', async () => {
    for (const connectTimeout of [Number.NaN, -1, 0, 2 ** 31, '5000']) {
      const outcome = await RedisBroker.connect(redis.url, { logger: silent, connectTimeout: connectTimeout as number }).then(
        async (broker) => {
          await broker.close()
          return 'connected'
        },
        (e: unknown) => e,
      )
      expect(outcome, `connectTimeout ${String(connectTimeout)}`).toBeInstanceOf(TypeError)
      expect((outcome as Error).message).toMatch(/connectTimeout/)
    }
    // A good one connects.
    const broker = await RedisBroker.connect(redis.url, { logger: silent, connectTimeout: 5000 })
    await broker.close()
  })

  it('refuses a channel that is no string, naming it (an object would be the channel "[object Object]")', async () => {
    const outcome = await RedisBroker.connect(redis.url, { logger: silent, channel: {} as never }).then(
      async (broker) => {
        await broker.close()
        return 'connected'
      },
      (e: unknown) => e,
    )
    expect(outcome).toBeInstanceOf(TypeError)
    expect((outcome as Error).message).toMatch(/channel/)
  })
})
