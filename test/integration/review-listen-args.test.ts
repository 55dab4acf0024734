/**
 * Review: `server.listen(port, host)` attaches the server to the HTTP server it creates before it knows
 * the listen succeeded. A port that is taken (EADDRINUSE), out of range (-1, 70000, 1.5) or a host that
 * does not resolve rejects, but leaves that never-listening HTTP server attached: every later `listen()`
 * throws "already attached to an HTTP server", so an app that catches the failure and tries another port
 * or host cannot, and is told of a mistake it did not make. And a port that is no number (`"abc"`, a
 * mistyped PORT passed as a string) listens on a Unix socket of that name and resolves `{ port: undefined }`.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { NotificationServer } from '../../src/server/index.js'
import { API_KEY, SECRET } from '../helpers/server.js'

const dirs: string[] = []
const servers: NotificationServer[] = []
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close().catch(() => {})
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})
function make(): NotificationServer {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-review-listen-'))
  dirs.push(dir)
  const server = new NotificationServer({
    secret: SECRET,
    apiKey: API_KEY,
    database: join(dir, 'belfry.db'),
    logger: pino({ level: 'silent' }),
  })
  servers.push(server)
  return server
}

describe('listen() after a listen() that failed', () => {
  it('listens: a taken port, a bad port or an unknown host leaves the server free to listen elsewhere', async () => {
    const holder = createServer().listen(0, '127.0.0.1')
    await new Promise((resolve) => holder.once('listening', resolve))
    const taken = (holder.address() as { port: number }).port
    try {
      for (const [port, host] of [
        [taken, '127.0.0.1'],
        [-1, '127.0.0.1'],
        [70_000, '127.0.0.1'],
        [0, 'no-such-host.invalid'],
      ] as const) {
        const server = make()
        await expect(server.listen(port, host), `${port} ${host}`).rejects.toThrow()
        const again = await server.listen(0, '127.0.0.1').catch((e: unknown) => e)
        expect(again, `listen(0) after listen(${port}, ${host})`).toEqual({ port: expect.any(Number) })
        const health = await fetch(`http://127.0.0.1:${(again as { port: number }).port}/healthz`)
        expect(health.status).toBe(200)
      }
    } finally {
      holder.close()
    }
  })
})

describe('listen() with a port that is no number', () => {
  it('is a TypeError naming the port, not a Unix socket and { port: undefined }', async () => {
    const server = make()
    const outcome = await server.listen('abc' as never, '127.0.0.1').catch((e: unknown) => e)
    expect(outcome).toBeInstanceOf(TypeError)
    expect((outcome as Error).message).toMatch(/port/)
  })
})
