/**
 * The scripts `npm test` runs before the suites (`node scripts/chromium.mjs`,
 * `node scripts/services.mjs`), from a checkout whose path holds a space
 * (~/My Projects/belfry): each must still find, install or name what is missing.
 */
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** `node scripts/<script>` in `root`, as package.json's "test" runs it. */
function run(root: string, script: string, env: Record<string, string>) {
  const r = spawnSync(process.execPath, [`scripts/${script}`], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe('scripts/chromium.mjs and scripts/services.mjs in a checkout whose path holds a space', () => {
  let checkout: string
  beforeAll(() => {
    // The same files at another place: ~/My Projects/belfry, say.
    checkout = join(mkdtempSync(join(tmpdir(), 'belfry-scripts-')), 'My Projects', 'belfry')
    mkdirSync(join(checkout, 'scripts'), { recursive: true })
    for (const script of ['chromium.mjs', 'services.mjs']) copyFileSync(join(ROOT, 'scripts', script), join(checkout, 'scripts', script))
  })
  afterAll(() => rmSync(join(checkout, '..', '..'), { recursive: true, force: true }))

  it('chromium.mjs prints the browser CHROME_PATH names, as it does from the repository', () => {
    const expected = { status: 0, stdout: `${process.execPath}\n`, stderr: '' }
    expect(run(ROOT, 'chromium.mjs', { CHROME_PATH: process.execPath })).toEqual(expected)
    expect(run(checkout, 'chromium.mjs', { CHROME_PATH: process.execPath })).toEqual(expected)
  })

  it('chromium.mjs refuses a CHROME_PATH that is no executable (exit 1), as it does from the repository', () => {
    const expected = { status: 1, stdout: '', stderr: 'CHROME_PATH=/nonexistent/chromium is not an executable file\n' }
    expect(run(ROOT, 'chromium.mjs', { CHROME_PATH: '/nonexistent/chromium' })).toEqual(expected)
    expect(run(checkout, 'chromium.mjs', { CHROME_PATH: '/nonexistent/chromium' })).toEqual(expected)
  })

  it('services.mjs refuses a REDIS_SERVER that is no executable (exit 1), as it does from the repository', () => {
    const expected = { status: 1, stdout: '', stderr: 'REDIS_SERVER=/nonexistent/redis-server is not an executable file\n' }
    expect(run(ROOT, 'services.mjs', { REDIS_SERVER: '/nonexistent/redis-server' })).toEqual(expected)
    expect(run(checkout, 'services.mjs', { REDIS_SERVER: '/nonexistent/redis-server' })).toEqual(expected)
  })
})
