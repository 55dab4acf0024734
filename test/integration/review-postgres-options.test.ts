/**
 * Review: `PostgresStore.open` checks `connectTimeoutMs` and `queryTimeoutMs` only from below (a whole
 * number ≥ 1). Past setTimeout's 2^31-1 ms, pg's timers fire after 1 ms: `connectTimeoutMs: 2 ** 31`
 * fails every connection at once ("timeout exceeded when trying to connect"), and a `queryTimeoutMs`
 * near or past it either fails every query at once (pg's `query_timeout` is queryTimeoutMs + 2000) or is
 * refused by PostgreSQL as a setting out of range: in both cases a store that does not open, told in
 * words of pg's settings, not of the option. The server's own timer options, and the client's, stop at
 * 2^31-1 with a TypeError that names them.
 */
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { PostgresStore } from '../../src/server/index.js'
import { usePostgres } from '../helpers/postgres.js'

const db = usePostgres()
const schema = () => `r_${randomBytes(6).toString('hex')}`

async function outcome(options: Parameters<typeof PostgresStore.open>[1]): Promise<unknown> {
  return PostgresStore.open(db.url, { schema: schema(), ...options }).then(
    async (store) => {
      await store.close()
      return 'opened'
    },
    (error: unknown) => error,
  )
}

/** Refused up front with a TypeError naming `name`, or (a bound held to what the timers take) a store that opens and works. */
function expectNamedOrOpened(result: unknown, name: string, given: number): void {
  if (result === 'opened') return
  expect(result, `${name}: ${given}`).toBeInstanceOf(TypeError)
  expect((result as Error).message).toMatch(new RegExp(name))
}

describe('PostgresStore.open: a timeout past setTimeout’s range', () => {
  it('is a TypeError that names connectTimeoutMs (not a store that fails every connection after 1 ms)', async () => {
    expectNamedOrOpened(await outcome({ connectTimeoutMs: 2 ** 31 }), 'connectTimeoutMs', 2 ** 31)
  })

  it('is a TypeError that names queryTimeoutMs (not pg’s words for the settings made of it)', async () => {
    for (const queryTimeoutMs of [2 ** 31 - 1, 2 ** 40]) {
      expectNamedOrOpened(await outcome({ queryTimeoutMs }), 'queryTimeoutMs', queryTimeoutMs)
    }
  })

  it('(in range, both open)', async () => {
    expect(await outcome({ connectTimeoutMs: 60_000, queryTimeoutMs: 60_000 })).toBe('opened')
  })
})
