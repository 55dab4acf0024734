/**
 * Review of the packages as an app installs them, beyond packaging.test.ts:
 * `npm run pack`'s tarballs (built outside dist/, as there) installed into a
 * scratch project outside the repository, from npm's cache only (`--offline`),
 * the server's native dependency given the repository's compiled copy.
 */
import { execFileSync } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pack } from '../../scripts/pack.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc')
const scratch: string[] = []
let server: string

beforeAll(async () => {
  const out = mkdtempSync(join(tmpdir(), 'belfry-review-pack-'))
  scratch.push(out)
  const tarballs = await pack(`${out}/`)
  server = mkdtempSync(join(tmpdir(), 'belfry-review-server-'))
  scratch.push(server)
  writeFileSync(join(server, 'package.json'), JSON.stringify({ name: 'scratch-review-server', private: true, type: 'module' }))
  execFileSync(
    'npm',
    ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error', tarballs['belfry-server']],
    {
      cwd: server,
      stdio: 'pipe',
    },
  )
  cpSync(join(ROOT, 'node_modules/better-sqlite3/build'), join(server, 'node_modules/better-sqlite3/build'), { recursive: true })
}, 120_000)
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true })
})

/** tsc's output for `source`, type-checked as an app of `dir` (strict, exactOptionalPropertyTypes, skipLibCheck: false). */
function typecheck(dir: string, source: string): string {
  writeFileSync(join(dir, 'app.ts'), source)
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        exactOptionalPropertyTypes: true,
        verbatimModuleSyntax: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        lib: ['es2023'],
        types: ['node'],
        typeRoots: [join(ROOT, 'node_modules/@types')],
        skipLibCheck: false,
        noEmit: true,
      },
      files: ['app.ts'],
    }),
  )
  try {
    execFileSync(process.execPath, [TSC, '-p', dir], { cwd: dir, encoding: 'utf8' })
    return ''
  } catch (error) {
    return String((error as { stdout?: string }).stdout ?? error)
  }
}

describe('belfry-server in a TypeScript app (exactOptionalPropertyTypes)', () => {
  // CHANGELOG (0.2.0): "Every option that may be absent takes `undefined`, on the client and the server." The client's
  // options do (test/types/client.test-d.ts), and ServerOptions, Retention, PostgresStoreOptions, RedisBrokerOptions;
  // SqliteStoreOptions and NotificationInput (what sendToUser and the rest take) do not, though the code takes it.
  it('takes undefined for SqliteStoreOptions and NotificationInput fields that may be absent, as the code does', () => {
    // What the code does with those undefined values: the defaults (run first, so what fails below is the types alone).
    const runtime = `import { NotificationServer, SqliteStore } from 'belfry-server'
const store = new SqliteStore('./undefined-options.db', { maxBytes: undefined, walSizeLimit: undefined, fanOutBatch: undefined, pruneBatch: undefined })
const server = new NotificationServer({ secret: 'review-secret-0123456789', store, logger: undefined })
const published = await server.sendToUser('ann', { title: 't', body: 'b', priority: undefined, data: undefined })
console.log(published.recipients)
await server.close()`
    expect(execFileSync(process.execPath, ['--input-type=module', '-e', runtime], { cwd: server, encoding: 'utf8' }).trim()).toBe('1')

    const errors = typecheck(
      server,
      `import { NotificationServer, SqliteStore, type NotificationInput, type Priority, type SqliteStoreOptions } from 'belfry-server'
// An app's configuration, where each setting may be unset.
const bytes = (name: string): number | undefined => (process.env[name] ? Number(process.env[name]) : undefined)
const options: SqliteStoreOptions = {
  maxBytes: bytes('BELFRY_MAX_BYTES'),
  walSizeLimit: bytes('BELFRY_WAL_LIMIT'),
  fanOutBatch: undefined,
  pruneBatch: undefined,
}
const server = new NotificationServer({ secret: process.env.BELFRY_SECRET ?? '', store: new SqliteStore('./belfry.db', options) })
// A request body passed on: priority and data optional.
declare const body: { title: string; body: string; priority?: Priority | undefined; data?: { build: number } | undefined }
const input: NotificationInput = { title: body.title, body: body.body, priority: body.priority, data: body.data }
await server.sendToUser('ann', input)
`,
    )
    expect(errors).toBe('')
  })
})

describe("belfry-server's engines", () => {
  /** semver, as npm reads `engines` (a dependency of the repository's own tools). */
  const semver = createRequire(import.meta.url)('semver') as { satisfies(version: string, range: string): boolean }

  // dist/server/http.js calls URL.parse for every HTTP request (the route, the Host check). Node has it from 20.18 on the
  // 20 line and from 22.1 (never on 21): on a Node that `>=20.19` admits without a word from npm (21.x, 22.0.x), every
  // request, /healthz included, answers 500 ("URL.parse is not a function"). README also promises require() of the
  // packages "from Node 20.19", which Node has unflagged from 20.19 and from 22.12 only.
  it('admits no Node version that lacks what the server calls (URL.parse: 20.18+ and 22.1+, never 21)', () => {
    const { engines } = JSON.parse(readFileSync(join(server, 'node_modules/belfry-server/package.json'), 'utf8')) as {
      engines: { node: string }
    }
    const http = readFileSync(join(server, 'node_modules/belfry-server/dist/server/http.js'), 'utf8')
    expect(http.includes('URL.parse('), 'dist/server/http.js calls URL.parse').toBe(true)
    for (const version of ['20.19.0', '20.20.2', '22.12.0', '24.0.0'])
      expect(semver.satisfies(version, engines.node), `engines.node "${engines.node}" admits Node ${version}`).toBe(true)
    for (const version of ['21.7.3', '22.0.0'])
      expect(semver.satisfies(version, engines.node), `engines.node "${engines.node}" admits Node ${version}, which has no URL.parse`).toBe(
        false,
      )
  })
})
