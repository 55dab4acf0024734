/**
 * Review: belfry-server checks every variable it reads and names the bad one, what it got and what
 * it expects (PORT, BELFRY_DB, BELFRY_DRAIN_MS, …) — except HOST. A HOST it cannot listen on stops
 * the process with Node's own words ("getaddrinfo ENOTFOUND 127.0.0.l"), which name neither HOST
 * nor what it should be.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runCli } from '../helpers/process.js'
import { API_KEY, SECRET } from '../helpers/server.js'

const dir = mkdtempSync(join(tmpdir(), 'belfry-host-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('belfry-server HOST', () => {
  it.each(['127.0.0.l', '10.255.255.1'])(
    'refuses HOST=%s with a one-line error that names HOST and the value',
    async (host) => {
      const { code, stderr } = await runCli({ BELFRY_SECRET: SECRET, BELFRY_API_KEY: API_KEY, BELFRY_DB: join(dir, 'x.db'), HOST: host })
      expect(code).toBe(1)
      expect(stderr.trim().split('\n')).toHaveLength(1)
      expect(stderr).toContain(host)
      expect(stderr).toMatch(/\bHOST\b/)
    },
    20_000,
  )
})
