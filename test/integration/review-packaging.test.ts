/**
 * Review of the packages as an app installs them, beyond packaging.test.ts:
 * `npm run pack`'s tarballs (built outside dist/, as there) installed into a
 * scratch project outside the repository, from npm's cache only (`--offline`),
 * the server's native dependency given the repository's compiled copy.
 */
import { execFileSync } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
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
