/**
 * Review helpers: belfry/shared tabs in Chromium on a 2-process cluster (PostgreSQL + Redis), the demo
 * served by each process (`belfry-server --dev`), the browser reaching them through a TCP proxy whose
 * target the test moves (test/chaos/proxy.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest'
import { DEV_API_KEY } from '../../src/server/config.js'
import { ChaosProxy } from '../chaos/proxy.js'
import { type PgInstance, type RedisInstance, startPostgres, startRedis } from '../helpers/services.js'
import { launchBrowser } from './harness.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

export interface Proc {
  url: string
  port: number
  child: ChildProcess
  exited: Promise<void>
  out(): string
}

const procs = new Set<ChildProcess>()
process.on('exit', () => {
  for (const c of procs) c.kill('SIGKILL')
})

export async function startProc(env: Record<string, string>): Promise<Proc> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/cli.ts', '--dev'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  procs.add(child)
  let out = ''
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-64_000)
  }
  child.stderr!.on('data', keep)
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      procs.delete(child)
      resolve()
    }),
  )
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      keep(d)
      const m = /belfry demo: (http:\/\/\S+?)\/?\s*$/m.exec(out)
      if (m?.[1]) resolve(m[1])
    })
    void exited.then(() => reject(new Error(`server exited:\n${out}`)))
  })
  return { url, port: Number(new URL(url).port), child, exited, out: () => out }
}

export interface Mix {
  browser: Browser
  context: BrowserContext
  db: pg.Pool
  nodes: Proc[]
  proxy: ChaosProxy
  /** http://127.0.0.1:<proxy> */
  url: string
  env: Record<string, string>
  /** Points new connections at node i. */
  route(i: number): void
}

export function useMix(): Mix {
  let pgi: PgInstance
  let redis: RedisInstance
  const mix = {} as Mix
  beforeAll(async () => {
    ;[mix.browser, pgi, redis] = await Promise.all([launchBrowser(), startPostgres(), startRedis()])
  }, 60_000)
  afterAll(async () => {
    await mix.browser?.close()
    await pgi?.dispose()
    await redis?.dispose()
  })
  beforeEach(async () => {
    const name = `r_${randomBytes(5).toString('hex')}`
    const admin = new pg.Client({ connectionString: pgi.url })
    await admin.connect()
    await admin.query(`CREATE DATABASE ${name}`)
    await admin.end()
    const dbUrl = pgi.url.replace(/\/postgres$/, `/${name}`)
    mix.env = { BELFRY_DATABASE_URL: dbUrl, BELFRY_REDIS_URL: redis.url, BELFRY_REDIS_CHANNEL: `belfry:${name}` }
    mix.nodes = [await startProc(mix.env), await startProc(mix.env)]
    mix.db = new pg.Pool({ connectionString: dbUrl, max: 2 })
    mix.db.on('error', () => {})
    mix.proxy = new ChaosProxy({ host: '127.0.0.1', port: mix.nodes[0]!.port })
    mix.url = `http://127.0.0.1:${await mix.proxy.listen()}`
    mix.route = (i) => {
      mix.proxy.target = { host: '127.0.0.1', port: mix.nodes[i]!.port }
    }
    mix.context = await mix.browser.newContext({ viewport: { width: 900, height: 700 } })
  }, 60_000)
  afterEach(async () => {
    await mix.context?.close()
    await mix.proxy?.close()
    for (const n of mix.nodes ?? []) n.child.kill('SIGKILL')
    await Promise.all((mix.nodes ?? []).map((n) => n.exited))
    await mix.db?.end()
  })
  return mix
}

export interface Rec {
  seqs: number[]
  unread: number
  reads: number
  log: unknown[]
  state: string
  mode: string
}

/** A demo page of `user` with sharing on, recording every notification its client hands over from the start. */
export async function openTab(mix: Mix, user = 'ann'): Promise<Page> {
  const page = await mix.context.newPage()
  await page.addInitScript(() => {
    const w = window as unknown as { rec: { seqs: number[]; reads: number }; _b: unknown }
    w.rec = { seqs: [], reads: 0, log: [] } as never
    Object.defineProperty(window, 'belfry', {
      configurable: true,
      get: () => w._b,
      set(client: { on(type: string, f: (n: { seq: number }) => void): void }) {
        client.on('notification', (n) => w.rec.seqs.push(n.seq))
        client.on('read', (e) => {
          w.rec.reads++
          ;(w.rec as unknown as { log: unknown[] }).log.push(e)
        })
        w._b = client
      },
    })
  })
  await page.goto(`${mix.url}/?user=${user}&share=1`)
  await page.locator('[data-testid="status"][data-state="online"]').waitFor({ timeout: 15_000 })
  return page
}

export const rec = (page: Page): Promise<Rec> =>
  page.evaluate(() => {
    const w = window as unknown as {
      rec: { seqs: number[]; reads: number; log: unknown[] }
      belfry: { unreadCount: number; state: string; mode: string }
    }
    return {
      seqs: [...w.rec.seqs],
      log: w.rec.log,
      reads: w.rec.reads,
      unread: w.belfry.unreadCount,
      state: w.belfry.state,
      mode: w.belfry.mode,
    }
  })

export async function leaderOf(pages: Page[]): Promise<Page> {
  for (const p of pages) if ((await rec(p)).mode === 'leader') return p
  throw new Error('no leader')
}

export async function publishTo(node: Proc, body: Record<string, unknown>): Promise<{ status: number; id?: string | undefined }> {
  const res = await fetch(`${node.url}/api/notifications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${DEV_API_KEY}` },
    body: JSON.stringify({ title: 't', body: '', ...body }),
  })
  const json = (await res.json()) as { ids?: string[] }
  return { status: res.status, id: json.ids?.[0] }
}

/** The user's inbox in the store: seqs in order, and the unread count the server keeps. */
export async function truth(mix: Mix, user = 'ann'): Promise<{ seqs: number[]; unread: number; unreadEntries: number }> {
  const { rows } = await mix.db.query<{ seq: string; read: boolean }>(
    'SELECT i.seq, i.read FROM belfry.inbox i JOIN belfry.users u ON u.no = i.user_no WHERE u.id = $1 ORDER BY i.seq',
    [user],
  )
  const u = await mix.db.query<{ unread: string }>('SELECT unread FROM belfry.users WHERE id = $1', [user])
  return { seqs: rows.map((r) => Number(r.seq)), unread: Number(u.rows[0]?.unread ?? 0), unreadEntries: rows.filter((r) => !r.read).length }
}

export async function until(check: () => Promise<boolean> | boolean, what: string, timeout = 20_000): Promise<void> {
  const start = Date.now()
  while (!(await check())) {
    if (Date.now() - start > timeout) throw new Error(`not within ${timeout} ms: ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
