/**
 * Review: checkNotification (src/server/publish-input.ts) checks `data` as
 * given (a plain object, its depth, its numbers) but stores what
 * JSON.stringify makes of it. Through the programmatic API, a `toJSON` in
 * `data` makes that something else: an array or null (which belfry's client
 * refuses as a bad frame: parseServerFrame wants `data` to be an object, so
 * the stored notification never shows), or a value nested far deeper than
 * the documented 32 levels. The HTTP API cannot send a function, so only the
 * programmatic API is open to it; it should check what it stores.
 */
import { describe, expect, it } from 'vitest'
import { parseServerFrame } from '../../src/protocol/index.js'
import { authedClient, useServer } from '../helpers/server.js'

const start = useServer()

async function outcome(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => 'resolved',
    (e: unknown) => (e as Error).name,
  )
}

describe('programmatic API: data is checked as it is stored', () => {
  it('data whose toJSON makes an array is refused (a TypeError), not stored as a notification the client drops', async () => {
    const s = await start()
    const ann = await authedClient(s, 'ann')
    const data = { toJSON: () => [1, 2] } as unknown as Record<string, never>
    const result = await outcome(s.server.sendToUser('ann', { title: 'x', body: '', data }))
    const sent = await ann.next((f) => f.type === 'notification' || f.type === 'pong').catch(() => undefined)
    ann.close()
    expect({ result, sentDataIsArray: Array.isArray(sent?.data) }).toEqual({ result: 'TypeError', sentDataIsArray: false })
  })

  it('the frame of a notification published with such data is refused by belfry’s own client parser', async () => {
    const s = await start()
    const ann = await authedClient(s, 'ann')
    const data = { toJSON: () => null } as unknown as Record<string, never>
    const result = await outcome(s.server.sendToUser('ann', { title: 'x', body: '', data }))
    if (result === 'resolved') {
      const frame = await ann.next((f) => f.type === 'notification')
      // What belfry's client does with it: `undefined` is "bad frame", reported as a ProtocolError and dropped.
      expect(parseServerFrame(JSON.stringify(frame))).toBeDefined()
    } else expect(result).toBe('TypeError')
    ann.close()
  })

  it('data nested past 32 levels through toJSON is refused', async () => {
    const s = await start()
    let deep: Record<string, unknown> = {}
    for (let i = 0; i < 100; i++) deep = { d: deep }
    const data = { x: { toJSON: () => deep } } as unknown as Record<string, never>
    expect(await outcome(s.server.sendToUser('ann', { title: 'x', body: '', data }))).toBe('TypeError')
  })
})
