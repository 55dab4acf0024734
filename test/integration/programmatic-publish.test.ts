/**
 * The programmatic API checks what it is given as the HTTP API does, and what
 * it stores: a bad argument is a TypeError, nothing is stored, and it is no
 * store failure (/healthz stays ok).
 */
import { describe, expect, it } from 'vitest'
import type { NotificationInput } from '../../src/server/index.js'
import { authedClient, httpPublish, settle, useServer } from '../helpers/server.js'

const start = useServer()
const valid = { title: 'x', body: '' }
const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as Error,
  )

describe('programmatic API: what the HTTP API refuses, and what would be stored', () => {
  it('a sparse userIds array (whose holes every() skips) is a TypeError, and no store failure', async () => {
    const s = await start()
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    expect(await failure(s.server.sendToUsers([, 'ann'] as unknown as string[], valid))).toBeInstanceOf(TypeError)
    expect(await failure(s.server.sendToUsers(new Array(3), valid))).toBeInstanceOf(TypeError)
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    expect(await failure(s.server.unsubscribe('ann', [, 'news'] as unknown as string[]))).toBeInstanceOf(TypeError)
    // A huge sparse one is refused at its first hole, nothing allocated for its length.
    expect(await failure(s.server.unsubscribe('ann', new Array(2 ** 32 - 1)))).toBeInstanceOf(TypeError)
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200)
  })

  it('a field the HTTP API refuses (a typo: "priorty") is a TypeError, not ignored', async () => {
    const s = await start()
    const notification = { title: 'Deploy failed', body: 'api', priorty: 'high' } as unknown as NotificationInput
    expect((await httpPublish(s.url, { userId: 'ann', ...notification })).status).toBe(400)
    expect(await failure(s.server.sendToUser('ann', notification))).toEqual(new TypeError('unknown field "priorty"'))
  })

  it('data is checked as JSON.stringify writes it (a toJSON): no array, null or 100 levels are stored', async () => {
    const s = await start()
    const ann = await authedClient(s, 'ann')
    let deep: Record<string, unknown> = {}
    for (let i = 0; i < 100; i++) deep = { d: deep }
    for (const data of [{ toJSON: () => [1, 2] }, { toJSON: () => null }, { x: { toJSON: () => deep } }]) {
      const error = await failure(s.server.sendToUser('ann', { ...valid, data: data as never }))
      expect(error).toBeInstanceOf(TypeError)
      expect(error?.message).toMatch(/"data" must be a JSON object nested at most 32 levels deep/)
    }
    // A Date (a toJSON that makes a string) inside is fine: it is stored as that string.
    await s.server.sendToUser('ann', { ...valid, data: { at: new Date(0) } as never })
    await settle(ann)
    expect(ann.of('notification').map((n) => n.data)).toEqual([{ at: '1970-01-01T00:00:00.000Z' }])
    ann.close()
  })
})
