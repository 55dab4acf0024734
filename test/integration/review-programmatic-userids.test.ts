/**
 * Review: sendToUsers() checks its ids with Array.prototype.every, which skips
 * the holes of a sparse array: `[, 'ann']` or `new Array(3)` passes the check
 * (checkAudience, src/server/publish-input.ts), reaches the store with an
 * `undefined` user id, fails there (NOT NULL constraint) and comes back as an
 * UnavailableError, not the documented TypeError. Worse, the server records
 * it as a store failure: /healthz answers 503 "unavailable" for 5 s, so a load
 * balancer takes the process out for a caller's bad argument.
 */
import { describe, expect, it } from 'vitest'
import { useServer } from '../helpers/server.js'

const start = useServer()
const valid = { title: 'x', body: '' }

describe('programmatic API: a sparse userIds array', () => {
  it('sendToUsers([, "ann"]) rejects with a TypeError, like any bad audience, and /healthz stays ok', async () => {
    const s = await start()
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    const error = await s.server.sendToUsers([, 'ann'] as unknown as string[], valid).then(
      () => undefined,
      (e: unknown) => e,
    )
    const health = await fetch(`${s.url}/healthz`)
    expect({ name: (error as Error | undefined)?.name, health: health.status }).toEqual({ name: 'TypeError', health: 200 })
  })

  it('sendToUsers(new Array(3)) rejects with a TypeError', async () => {
    const s = await start()
    const error = await s.server.sendToUsers(new Array(3), valid).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(TypeError)
  })
})
