/**
 * A wall clock that steps (NTP correcting a clock that ran ahead, a VM restored from a snapshot): what the server
 * times as elapsed time is on the monotonic clock, and only what is a date (a token's `exp`, a notification's
 * age, an idempotency key's expiry) on the wall clock. Each test fakes `Date` (and `performance` where it needs
 * time to pass quickly), running at real speed, and steps it back an hour.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, expect, it, vi } from 'vitest'
import { SqliteStore } from '../../src/server/index.js'
import { authedClient, httpPublish, useServer } from '../helpers/server.js'

const HOUR = 3_600_000
const start = useServer()
const dirs: string[] = []
afterEach(() => {
  vi.useRealTimers()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const database = () => {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-clock-'))
  dirs.push(dir)
  return join(dir, 'belfry.db')
}

it('/healthz is ok again seconds after a store failure, though the wall clock stepped back an hour since', async () => {
  // The failure's time was on the wall clock: every failure of the last hour looked less than 5 s old, 503 for an hour.
  vi.useFakeTimers({ toFake: ['Date'], now: Date.now(), shouldAdvanceTime: true })
  const store = new SqliteStore(database())
  let failing = true
  const publish = store.publish.bind(store)
  store.publish = (...args) => (failing ? Promise.reject(new Error('disk I/O error')) : publish(...args))
  const s = await start({ store })
  expect((await httpPublish(s.url, { userId: 'ann', title: 'blip', body: '' })).status).toBe(503)
  expect((await fetch(`${s.url}/healthz`)).status).toBe(503)
  failing = false
  vi.setSystemTime(Date.now() - HOUR)
  await sleep(5500) // the failure is remembered for 5 s
  const res = await fetch(`${s.url}/healthz`)
  expect(await res.json()).toMatchObject({ status: 'ok' })
}, 30_000)

it('reads the store for its connections 30 s after the last read, though the wall clock stepped back an hour', async () => {
  // The last read's time was on the wall clock: stepped back, nothing was read for an hour, and a notification only
  // that read brings (another process on the same file, with no broker between) came an hour late.
  vi.useFakeTimers({ toFake: ['Date', 'performance'], now: Date.now(), shouldAdvanceTime: true })
  const file = database()
  const s = await start({ database: file })
  const other = new SqliteStore(file)
  try {
    const ann = await authedClient(s, 'ann')
    vi.setSystemTime(Date.now() - HOUR)
    await other.publish({ userIds: ['ann'] }, { title: 'only the store has it', body: '' })
    vi.advanceTimersByTime(30_000) // 30 s on both clocks (the hour back stays): the upkeep's next second reads
    await vi.waitFor(() => expect(ann.of('notification').map((f) => f.title)).toEqual(['only the store has it']), {
      timeout: 5000,
      interval: 100,
    })
  } finally {
    await other.close()
  }
}, 30_000)
