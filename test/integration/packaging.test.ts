/**
 * The two packages as an app installs them: `npm run pack`'s tarballs installed
 * into scratch projects outside the repository, their types checked by an app
 * with `skipLibCheck: false`, the client loaded by Node and the server's bin run.
 *
 * Installs come from npm's cache (filled by the repository's own install). The
 * server's native dependency, better-sqlite3, is installed without its build
 * script and given the repository's compiled copy of the same version: the
 * same files its build would make, without a 90 s compile.
 */
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { pack } from '../../scripts/pack.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc')
const scratch: string[] = []
let out: string
let tarballs: Awaited<ReturnType<typeof pack>>

beforeAll(async () => {
  // Built outside dist/, which other suites use meanwhile (the demo page).
  out = mkdtempSync(join(tmpdir(), 'belfry-pack-'))
  scratch.push(out)
  tarballs = await pack(`${out}/`)
}, 120_000)
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true })
})

/** A new project outside the repository, with `npm install` of the given arguments done. */
function project(name: string, install: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), `belfry-${name}-`))
  scratch.push(dir)
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `scratch-${name}`, private: true, type: 'module' }))
  execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...install], {
    cwd: dir,
    stdio: 'pipe',
  })
  return dir
}

/** Writes `source` and a tsconfig for it: strict, with every declaration file checked, as an app of `dir` would. */
function app(dir: string, source: string, compilerOptions: Record<string, unknown> = {}, file = 'app.ts'): void {
  writeFileSync(join(dir, file), source)
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        exactOptionalPropertyTypes: true,
        noUncheckedIndexedAccess: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        lib: ['es2023', 'dom'],
        types: [],
        skipLibCheck: false,
        noEmit: true,
        ...compilerOptions,
      },
      files: [file],
    }),
  )
}

/** Type-checks `source` as an app of `dir` would, strict, with every declaration file checked. */
function typecheck(dir: string, source: string, compilerOptions: Record<string, unknown> = {}): string {
  app(dir, source, compilerOptions)
  try {
    execFileSync(process.execPath, [TSC, '-p', dir], { cwd: dir, encoding: 'utf8' })
    return ''
  } catch (error) {
    return String((error as { stdout?: string }).stdout ?? error)
  }
}

describe('the belfry client package', () => {
  let dir: string
  beforeAll(() => {
    dir = project('client', [tarballs.belfry])
  }, 60_000)

  it('installs with no server baggage: no native module, no Node-only dependency, no install script', () => {
    const installed = readdirSync(join(dir, 'node_modules')).filter((n) => !n.startsWith('.'))
    expect(installed.sort()).toEqual(['belfry', 'mitt'])
    for (const name of installed) {
      const manifest = JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')) as {
        scripts?: Record<string, string>
      }
      for (const hook of ['preinstall', 'install', 'postinstall', 'prepare'])
        expect(manifest.scripts?.[hook], `${name} ${hook}`).toBeUndefined()
    }
    const manifest = JSON.parse(readFileSync(join(dir, 'node_modules/belfry/package.json'), 'utf8')) as Record<string, unknown>
    expect(manifest).toMatchObject({ type: 'module', sideEffects: false, dependencies: { mitt: expect.any(String) } })
    expect(Object.keys(manifest.dependencies as object)).toEqual(['mitt'])
    // belfry/react: React is an optional peer (not installed above), and each entry lists its types first.
    expect(manifest).toMatchObject({ peerDependencies: { react: '^18 || ^19' }, peerDependenciesMeta: { react: { optional: true } } })
    const { './package.json': self, ...exports } = manifest.exports as Record<string, Record<string, string>>
    expect(Object.keys(exports)).toEqual(['.', './react', './shared', './desktop'])
    expect(self).toBe('./package.json')
    // `default` after `import`: require() of an ES module (Node >= 20.19) takes it.
    for (const entry of Object.values(exports)) expect(Object.keys(entry)).toEqual(['types', 'import', 'default'])
    expect(readFileSync(join(dir, 'node_modules/belfry', exports['./react']!.import!), 'utf8')).toMatch(/^["']use client["'];/)
    // No source maps that would point at files the package does not ship.
    const files = execFileSync('find', ['.', '-type', 'f'], { cwd: join(dir, 'node_modules/belfry'), encoding: 'utf8' })
    expect(files).not.toMatch(/\.map$/m)
    expect(files).toMatch(/LICENSE/)
  })

  it('loads in Node as an ES module', () => {
    const out = execFileSync(
      process.execPath,
      ['--input-type=module', '-e', "const m = await import('belfry'); console.log(Object.keys(m).sort().join())"],
      {
        cwd: dir,
        encoding: 'utf8',
      },
    )
    expect(out.trim()).toBe(
      'AuthError,BelfryError,ConnectionError,NotificationClient,ProtocolError,RequestError,TimeoutError,fullJitter,memoryStorage',
    )
  })

  // Regression: the exports map had only `types` and `import`, so require('belfry') failed with ERR_PACKAGE_PATH_NOT_EXPORTED.
  it('loads with require() in Node >= 20.19 (require of an ES module), each entry and its package.json', () => {
    const script = `const b = require('belfry'); require('belfry/shared'); require('belfry/desktop')
console.log(typeof b.NotificationClient, require('belfry/package.json').name)`
    let result: string
    try {
      result = execFileSync(process.execPath, ['--no-warnings', '-e', script], { cwd: dir, encoding: 'utf8', stdio: 'pipe' }).trim()
    } catch (error) {
      result = String((error as { stderr?: string }).stderr ?? error)
    }
    expect(result).toBe('function belfry')
  })

  it('loads belfry/shared in Node, which takes the client from belfry (one copy), and falls back to solo without Web Locks', () => {
    const script = `import { NotificationClient } from 'belfry'
import { sharedConnection } from 'belfry/shared'
const client = new NotificationClient({ url: 'ws://127.0.0.1:1/ws', token: 'x', WebSocket: class { static CLOSING = 2 }, connection: sharedConnection() })
client.on('status', (s) => console.log(s.mode))
client.on('error', () => {})
client.connect()
client.close()`
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, encoding: 'utf8' })
    expect(out.trim().split('\n')[0]).toBe('solo')
    const entry = readFileSync(join(dir, 'node_modules/belfry/dist/shared/index.js'), 'utf8')
    expect(entry).toMatch(/from ["']belfry["']/)
    expect(entry).not.toMatch(/class NotificationClient|reconnecting-websocket/i)
  })

  it('type-checks an app (strict, exactOptionalPropertyTypes, skipLibCheck: false)', () => {
    const errors = typecheck(
      dir,
      `import { NotificationClient, type Notification, type ErrorCode, type SocketEvent } from 'belfry'
// Regression: SocketEvent (in SocketLike's methods) and ErrorCode were not exported.
const events: SocketEvent[] = ['open', 'close', 'message', 'error']
const code: ErrorCode = 'token_expired'
console.log(events, code)
interface Deploy { service: string; version: string }
const client = new NotificationClient<Deploy>({ url: 'wss://example.com/ws', token: async () => 'token', WebSocket: globalThis.WebSocket })
client.on('notification', (n: Notification<Deploy>) => console.log(n.title, n.data?.service))
const read = await client.markRead(['a'])
const count: number = read.unreadCount
await client.ready({ timeout: 5000 })
console.log(count)
import { sharedConnection, type SharedConnectionOptions } from 'belfry/shared'
const sharing: SharedConnectionOptions = { beat: 1000, stale: 3000 }
const shared = new NotificationClient({ url: 'wss://example.com/ws', token: 'token', connection: sharedConnection(sharing) })
shared.on('status', (s) => console.log(s.mode satisfies 'solo' | 'leader' | 'follower'))
import { desktopNotifications, type DesktopPermission } from 'belfry/desktop'
const desktop = desktopNotifications(client, { onClick: (n) => console.log(n?.data?.service), interval: 2000 })
const permission: DesktopPermission = desktop.permission
desktop.on('permission', (p) => console.log(p === 'unsupported', permission))
`,
    )
    expect(errors).toBe('')
  })
})

/** A small React app on the provider and every hook, as an app would write it (JSX, strict). */
const REACT_APP = `import { type Notification, NotificationClient } from 'belfry'
import { BelfryProvider, type ConnectionInfo, useConnectionState, useNotificationEvent, useNotifications, useUnreadCount } from 'belfry/react'

interface Deploy { service: string }

function Bell() {
  const count: number = useUnreadCount()
  const { state, event, since }: ConnectionInfo = useConnectionState()
  const retryAt = since !== undefined && event?.retryIn !== undefined ? since + event.retryIn : undefined
  return <span title={state}>{count} {retryAt}</span>
}

function Inbox() {
  const { notifications, hasMore, loading, loadMore, markRead, markAllRead } = useNotifications<Deploy>()
  const first: Notification<Deploy> | undefined = notifications[0]
  useNotificationEvent<Deploy>('notification', (n) => console.log(n.title, n.data?.service))
  useNotificationEvent('status', (e) => console.log(e.to, e.retryIn))
  return (
    <ul title={first?.title}>
      {notifications.map((n) => (
        <li key={n.id} onClick={() => void markRead(n.id)}>{n.title}</li>
      ))}
      {hasMore && <button type="button" disabled={loading} onClick={() => void loadMore()}>more</button>}
      <button type="button" onClick={() => void markAllRead()}>all read</button>
    </ul>
  )
}

export function App() {
  return (
    <BelfryProvider client={() => new NotificationClient<Deploy>({ url: '/ws', token: async () => 'token' })} maxItems={50}>
      <Bell />
      <Inbox />
    </BelfryProvider>
  )
}
`

/** Server rendering with the package's entry in Node (no WebSocket there): its exports, then the markup. */
const SERVER_RENDER = `import { createElement as h } from 'react'
import { renderToString } from 'react-dom/server'
import * as belfry from 'belfry/react'
const { BelfryProvider, useConnectionState, useNotificationEvent, useNotifications, useUnreadCount } = belfry
console.log(Object.keys(belfry).sort().join())
function Status() {
  useNotificationEvent('status', () => {})
  return h('p', null, \`\${useConnectionState().state} \${useUnreadCount()} \${useNotifications().notifications.length}\`)
}
const factory = () => { throw new Error('no client in server rendering') }
console.log(renderToString(h(BelfryProvider, { client: factory }, h(Status))))
`

describe('belfry/react', () => {
  const run = promisify(execFile)
  /** What tsc said of REACT_APP, and what Node did with SERVER_RENDER, with each React. */
  const seen = new Map<number, { errors: string; stdout: string; stderr: string }>()
  // Both projects at once: two installs and two type-checks of the DOM's and React's declarations take a while.
  beforeAll(async () => {
    for (const [major, result] of await Promise.all(
      [18, 19].map(async (major) => {
        const dir = mkdtempSync(join(tmpdir(), `belfry-react${major}-`))
        scratch.push(dir)
        writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `scratch-react${major}`, private: true, type: 'module' }))
        const install = [tarballs.belfry, `react@${major}`, `react-dom@${major}`, `@types/react@${major}`]
        await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...install], { cwd: dir })
        app(dir, REACT_APP, { jsx: 'react-jsx' }, 'app.tsx')
        const tsc = await run(process.execPath, [TSC, '-p', dir], { cwd: dir }).catch((e: { stdout?: string }) => e)
        const { stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', SERVER_RENDER], { cwd: dir })
        return [major, { errors: String(tsc.stdout), stdout, stderr }] as const
      }),
    ))
      seen.set(major, result)
  }, 120_000)

  it.each([18, 19])('type-checks a React %i app (strict, exactOptionalPropertyTypes, skipLibCheck: false)', (major) => {
    expect(seen.get(major)?.errors).toBe('')
  })

  it.each([18, 19])('loads in Node next to React %i and renders on the server, with no warning and no client made', (major) => {
    expect(seen.get(major)).toMatchObject({
      stdout: 'BelfryProvider,useBelfryClient,useConnectionState,useNotificationEvent,useNotifications,useUnreadCount\n<p>idle 0 0</p>\n',
      stderr: '',
    })
  })
})

describe('the belfry-server package', () => {
  let dir: string
  beforeAll(() => {
    dir = project('server', ['--ignore-scripts', tarballs['belfry-server']])
    cpSync(join(ROOT, 'node_modules/better-sqlite3/build'), join(dir, 'node_modules/better-sqlite3/build'), { recursive: true })
  }, 60_000)

  // Regression: README started each process with `npx belfry-server &`; npm's shell did not pass SIGTERM on, and the
  // server neither drained nor exited (it went on listening, orphaned). The test runs the command README's snippet gives.
  it("drains and exits on SIGTERM (`kill $!`) when started as README's deploy snippet starts it", async () => {
    const command = /for port in [^;\n]+; do (.+?) & done/.exec(readFileSync(join(ROOT, 'README.md'), 'utf8'))?.[1]
    expect(command).toMatch(/belfry-server/)
    const child = spawn('sh', ['-c', `port=0; ${command} & echo "job $!"; wait`], {
      cwd: dir,
      env: {
        ...process.env,
        BELFRY_SECRET: 'package-test-secret-0123456789',
        BELFRY_API_KEY: 'package-test-key',
        BELFRY_DB: join(dir, 'sigterm.db'),
        BELFRY_DRAIN_MS: '200',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
    })
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    let pid: number | undefined
    try {
      await vi.waitFor(() => expect(out).toMatch(/belfry server: http:\/\/\S+/), { timeout: 15_000 })
      const url = /belfry server: (http:\/\/\S+?)\/?\s*$/m.exec(out)![1]!
      pid = (JSON.parse(out.split('\n').find((l) => l.includes('"listening"'))!) as { pid: number }).pid
      expect((await fetch(`${url}/healthz`)).status).toBe(200)
      process.kill(Number(/^job (\d+)$/m.exec(out)![1]), 'SIGTERM') // what a deploy signals: the process it started
      await exited
      await vi.waitFor(() => expect(alive(pid!), `belfry-server (pid ${pid}) still running after SIGTERM`).toBe(false), { timeout: 6_000 })
      expect(out).toMatch(/"signal":"SIGTERM","drain":true/)
    } finally {
      if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL')
      child.kill('SIGKILL')
    }
  }, 40_000)

  it('runs its bin, which serves /healthz, and /metrics when asked (prom-client is a dependency of its own)', async () => {
    const child = spawn(join(dir, 'node_modules/.bin/belfry-server'), [], {
      cwd: dir,
      env: {
        PATH: process.env.PATH ?? '',
        PORT: '0',
        HOST: '127.0.0.1',
        BELFRY_SECRET: 'package-test-secret-0123456789',
        BELFRY_API_KEY: 'package-test-key',
        BELFRY_DB: join(dir, 'belfry.db'),
        BELFRY_METRICS: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = ''
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString()
          const m = /belfry server: (http:\/\/\S+?)\/?\s*$/m.exec(out)
          if (m?.[1]) resolve(m[1])
        })
        child.once('exit', (code) => reject(new Error(`belfry-server exited with ${code}`)))
      })
      const res = await fetch(`${url}/healthz`)
      expect(res.status).toBe(200)
      expect(await res.json()).toEqual({ status: 'ok' })
      const metrics = await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer package-test-key' } })
      expect(metrics.status).toBe(200)
      expect(await metrics.text()).toMatch(/^belfry_connects_total 0$/m)
    } finally {
      child.kill('SIGTERM')
    }
  })

  // Regression: `belfry-server --help` started a production server, and a typo (`--dve`) a non-dev one.
  it('`belfry-server --help` prints its usage and exits 0; an unknown argument exits 2 naming it; neither starts a server', () => {
    const env = {
      PATH: process.env.PATH ?? '',
      PORT: '0',
      HOST: '127.0.0.1',
      BELFRY_SECRET: 'package-test-secret-0123456789',
      BELFRY_API_KEY: 'package-test-key',
      BELFRY_DB: join(dir, 'help.db'),
    }
    const run = (args: string[]) => {
      const r = spawnSync(join(dir, 'node_modules/.bin/belfry-server'), args, { cwd: dir, env, encoding: 'utf8', timeout: 5000 })
      return { code: r.status, stdout: r.stdout, stderr: r.stderr }
    }
    for (const flag of ['--help', '-h']) {
      const help = run([flag])
      expect({ code: help.code, stderr: help.stderr }).toEqual({ code: 0, stderr: '' })
      expect(help.stdout).toMatch(/^Usage: belfry-server/)
      for (const word of ['--dev', 'admin', 'BELFRY_SECRET', 'BELFRY_API_KEY', 'BELFRY_DB', 'PORT']) expect(help.stdout).toContain(word)
    }
    expect(run(['--dve'])).toEqual({
      code: 2,
      stdout: '',
      stderr: 'belfry-server: unknown argument "--dve" (see belfry-server --help)\n',
    })
  })

  it('type-checks an app (strict, exactOptionalPropertyTypes, skipLibCheck: false)', () => {
    const errors = typecheck(
      dir,
      `import { NotificationServer, SqliteStore, topicsClaim } from 'belfry-server'
// Regression: the types its API is written in (ServerOptions.retention, NotificationInput.data) were not exported.
import type { Json, JsonObject, Notification, Priority, Retention } from 'belfry-server'
const retention: Retention = { days: 30 }
const data: JsonObject = { n: 1, list: [1, 'a'] satisfies Json }
const priority: Priority = 'high'
export type Row = Notification
console.log(retention, data, priority)
const server = new NotificationServer({
  secret: process.env.BELFRY_SECRET ?? '',
  apiKey: process.env.BELFRY_API_KEY,
  store: new SqliteStore('./belfry.db', { maxBytes: 1 << 30 }),
  authorizeSubscribe: topicsClaim(),
})
const { port } = await server.listen(3000)
await server.sendToUser('ann', { title: 'Hi', body: 'there', data: { n: 1 } })
console.log(port)
`,
      { types: ['node'], typeRoots: [join(ROOT, 'node_modules/@types')] },
    )
    expect(errors).toBe('')
  })
})

describe('what the tarballs ship', () => {
  /** The files in a tarball, relative to its package folder. */
  const contents = (tarball: string) =>
    execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
      .split('\n')
      .filter((f) => f.startsWith('package/') && !f.endsWith('/'))
      .map((f) => f.slice('package/'.length))

  // Regression: the demo page was minified with its legal comments stripped, React's and reconnecting-websocket's licence notices with them.
  it("keeps, in belfry-server's demo page, the licence notices of the third-party code it bundles", () => {
    const assets = contents(tarballs['belfry-server']).filter((f) => f.startsWith('dist/demo/') && f.endsWith('.js'))
    expect(assets.length).toBeGreaterThan(0)
    const code = assets.map((f) => readFileSync(join(out, 'packages/belfry-server', f), 'utf8')).join('\n')
    const bundled = { 'reconnecting-websocket': /maxReconnectionDelay/, react: /react\.transitional\.element/ }
    const notice = { 'reconnecting-websocket': /Pedro Ladaria[\s\S]*License MIT/, react: /@license React[\s\S]*Meta Platforms/ }
    // (Booleans: a failure would print the whole bundle.)
    for (const [name, marker] of Object.entries(bundled)) {
      expect(marker.test(code), `${name} is bundled`).toBe(true)
      expect(notice[name as keyof typeof notice].test(code), `${name}'s notice`).toBe(true)
    }
    // Regression: built under vitest (NODE_ENV=test reached Vite), the page held React's development build.
    expect(code.includes('should have a unique "key" prop'), "React's development build").toBe(false)
  })

  // Regression: mitt, bundled in the demo page, has no licence comment to keep: its notice was nowhere in the package.
  it("ships, beside belfry-server's demo page, the licence text of every package the page bundles", () => {
    expect(contents(tarballs['belfry-server'])).toContain('dist/demo/licenses.md')
    const text = readFileSync(join(out, 'packages/belfry-server/dist/demo/licenses.md'), 'utf8')
    const sections = text.split(/^## /m).slice(1)
    const named = sections.map((s) => s.slice(0, s.indexOf(' ')))
    expect(named).toEqual(expect.arrayContaining(['mitt', 'react', 'react-dom', 'reconnecting-websocket']))
    for (const section of sections) expect(section, section.slice(0, 60)).toMatch(/Copyright[\s\S]*Permission is hereby granted/)
  })

  // Regression: the client's bundle carries reconnecting-websocket's code, whose MIT copyright and permission notice were in no file.
  it('ships, in the belfry package, the licence of the code its bundle carries (reconnecting-websocket)', () => {
    expect(/maxReconnectionDelay/.test(readFileSync(join(out, 'packages/belfry/dist/index.js'), 'utf8')), 'it is bundled').toBe(true)
    expect(contents(tarballs.belfry)).toContain('THIRD_PARTY_NOTICES.md')
    const text = readFileSync(join(out, 'packages/belfry/THIRD_PARTY_NOTICES.md'), 'utf8')
    const license = readFileSync(join(ROOT, 'node_modules/reconnecting-websocket/LICENSE'), 'utf8').trim()
    expect(text).toContain('## reconnecting-websocket ')
    expect(text).toContain(license)
    expect(license).toMatch(/Copyright[\s\S]*Permission is hereby granted/)
  })

  // Regression: the README linked to docs/protocol.md, CHANGELOG.md, docs/demo.png… which neither package shipped.
  it.each(['belfry', 'belfry-server'] as const)('links, in every markdown file of %s, only to files its tarball holds', (pkg) => {
    const files = contents(tarballs[pkg])
    const markdown = files.filter((f) => f.endsWith('.md'))
    expect(markdown).toEqual(expect.arrayContaining(['README.md', 'docs/protocol.md', 'docs/architecture.md', 'CHANGELOG.md']))
    const broken: string[] = []
    for (const file of markdown) {
      const text = readFileSync(join(out, 'packages', pkg, file), 'utf8')
      for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)\s]*)?\)/g)) {
        if (/^[a-z]+:/i.test(target!)) continue
        const path = normalize(join(dirname(file), target!))
        if (!files.includes(path)) broken.push(`${file}: ${target}`)
      }
    }
    expect(broken).toEqual([])
  })
})

/** Whether the process `pid` is still running. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
