/**
 * Review: a BELFRY_REDIS_URL that passes the CLI's scheme check but is no URL (a port past 65535, a bad IPv6
 * host) stops belfry-server with "belfry-server: Invalid URL", naming neither the variable nor Redis:
 * `RedisBroker.connect` makes its ioredis clients (which parse the URL and throw) before the `try` that
 * turns failures into "cannot reach Redis at <url>: …". The same mistake in BELFRY_DATABASE_URL is told as
 * "cannot use PostgreSQL at <url>: Invalid URL".
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runCli } from '../helpers/process.js'

const dir = mkdtempSync(join(tmpdir(), 'belfry-review-redis-url-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const base = { BELFRY_SECRET: 'review-cli-secret-0123456789', BELFRY_API_KEY: 'review-cli-key-123' }

describe('belfry-server: a malformed BELFRY_REDIS_URL', () => {
  it('is told in one line that names the variable or Redis, without its password, exit code 1', async () => {
    for (const [i, url] of ['redis://127.0.0.1:99999', 'redis://[::zz]:6379', 'redis://ops:hunter2secret@127.0.0.1:70000'].entries()) {
      const { code, stderr } = await runCli({ ...base, BELFRY_DB: join(dir, `r${i}.db`), BELFRY_REDIS_URL: url })
      expect(code, url).toBe(1)
      expect(stderr, url).toMatch(/^belfry-server: .*(BELFRY_REDIS_URL|Redis).*\n$/)
      expect(stderr).not.toContain('hunter2secret')
    }
  }, 60_000)
})
