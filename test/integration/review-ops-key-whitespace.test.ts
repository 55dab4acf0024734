/**
 * Review (ops): belfry-server and NotificationServer take an API key (or metrics token) with a space
 * in it, a passphrase, say, but the bearer check reads one run of non-space characters after
 * "Bearer": no request can ever present such a key. Publishing, the admin API (and the admin CLI,
 * which sends `Bearer $BELFRY_API_KEY`) and /metrics all answer 401 for ever, and nothing says why.
 * Either the key is refused at start, naming the variable, or it works.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { NotificationServer } from '../../src/server/index.js'
import { SECRET } from '../helpers/server.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const PASSPHRASE = 'correct horse battery staple'

/** Starts belfry-server: its URL once it listens, or its exit code and stderr if it refuses to start. */
function startCli(env: Record<string, string>): Promise<{ url: string; kill: () => void } | { code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/cli.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString()
  })
  return new Promise((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /belfry server: (http:\/\/\S+?)\/?\s*$/m.exec(out)
      if (m?.[1]) resolve({ url: m[1], kill: () => child.kill('SIGKILL') })
    })
    child.once('exit', (code) => resolve({ code, stderr: err }))
  })
}

describe('an API key or metrics token with a space', () => {
  it('belfry-server: BELFRY_API_KEY with a space is refused at start, naming it, or the publish and admin APIs take it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-review-ops-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const started = await startCli({ BELFRY_SECRET: SECRET, BELFRY_API_KEY: PASSPHRASE, BELFRY_DB: join(dir, 'belfry.db') })
    if ('code' in started) {
      expect(started.code).not.toBe(0)
      expect(started.stderr).toMatch(/BELFRY_API_KEY/)
      return
    }
    onTestFinished(started.kill)
    const headers = { authorization: `Bearer ${PASSPHRASE}`, 'content-type': 'application/json' }
    const publish = await fetch(`${started.url}/api/notifications`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ userId: 'ann', title: 'hi', body: '' }),
    })
    const admin = await fetch(`${started.url}/api/admin/users?id=ann`, { headers })
    expect([publish.status, admin.status], 'the server started with this BELFRY_API_KEY, yet refuses a request that presents it').toEqual([
      201, 200,
    ])
  })

  it('NotificationServer: metrics { token } with a space is refused (TypeError naming it), or /metrics takes it', async () => {
    let server: NotificationServer
    try {
      server = new NotificationServer({
        secret: SECRET,
        database: ':memory:',
        logger: pino({ level: 'silent' }),
        metrics: { token: PASSPHRASE },
      })
    } catch (error) {
      expect(error).toBeInstanceOf(TypeError)
      expect((error as Error).message).toMatch(/metrics/)
      return
    }
    onTestFinished(() => server.close())
    const { port } = await server.listen(0, '127.0.0.1')
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${PASSPHRASE}` } })
    expect(res.status, 'the server took this metrics token, yet refuses a scrape that presents it').toBe(200)
  })
})
