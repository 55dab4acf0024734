/**
 * Review (ops): a socket whose auth the server ends with 1011 (the store failed reading the user) is
 * closed by the server before it authenticated, yet belfry_auth_failures_total does not count it
 * (nor does belfry_authentications_total): README's "sockets the server closed before they
 * authenticated" misses it, and connects − authentications − auth_failures then blames the client.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { CloseCode } from '../../src/protocol/index.js'
import { SqliteStore } from '../../src/server/index.js'
import { API_KEY, rawClient, useServer } from '../helpers/server.js'

const start = useServer()

async function series(url: string): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${API_KEY}` } })
  const out = new Map<string, number>()
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    out.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return out
}

describe('belfry_auth_failures_total', () => {
  it('counts a socket refused with 1011 at auth (the store failed): closed by the server before it authenticated', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-review-ops-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const store = new SqliteStore(join(dir, 'belfry.db'))
    store.touchUser = () => Promise.reject(new Error('the database went away'))
    const s = await start({ metrics: true, store })
    const before = await series(s.url)

    const c = await rawClient(s.wsUrl)
    c.send({ type: 'auth', token: await s.token('ann'), since: 0 })
    expect((await c.closed).code).toBe(CloseCode.InternalError)
    await vi.waitFor(() => expect(s.server.stats().sockets).toBe(0))

    const after = await series(s.url)
    const delta = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0)
    expect(delta('belfry_connects_total')).toBe(1)
    expect(delta('belfry_closes_total{code="1011"}')).toBe(1)
    expect(delta('belfry_authentications_total'), 'an auth whose store read failed is no authentication').toBe(0)
    // The server closed it, and it never authenticated: one auth failure (reason "other", README's catch-all).
    const failures = [...after.keys()].filter((k) => k.startsWith('belfry_auth_failures_total')).reduce((n, k) => n + delta(k), 0)
    expect(failures, 'the 1011 refusal shows in belfry_auth_failures_total').toBe(1)
    expect(delta('belfry_auth_failures_total{reason="other"}')).toBe(1)
  })
})
