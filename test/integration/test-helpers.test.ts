/**
 * The test helpers' own hygiene: `npm test` runs hundreds of servers, and each
 * one a test starts must be gone after it (no port left listening, no SQLite
 * directory left in the temporary directory).
 */
import { existsSync } from 'node:fs'
import { dirname } from 'node:path'
import { describe, expect, it } from 'vitest'
import { useServer } from '../helpers/server.js'

describe('useServer()', () => {
  const start = useServer()
  const started: { dir: string; url: string }[] = []

  it('starts two servers in one test', async () => {
    for (const options of [{ drainMs: 0 }, { drainMs: 60_000 }]) {
      const s = await start(options)
      started.push({ dir: dirname(s.database), url: s.url })
    }
    expect(started.every((s) => existsSync(s.dir))).toBe(true)
  })

  it('after that test, neither server is left running and neither directory is left behind', async () => {
    expect(started).toHaveLength(2) // the test before ran: nothing to find would prove nothing
    const answering = async (url: string) => (await fetch(`${url}/healthz`).catch(() => undefined))?.status === 200
    const left = []
    for (const s of started) if (existsSync(s.dir) || (await answering(s.url))) left.push(s.url)
    expect(left).toEqual([])
  })
})
