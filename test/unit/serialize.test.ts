import { describe, expect, it, vi } from 'vitest'
import { parseServerFrame } from '../../src/protocol/index.js'
import { historyFrame, notificationFrame, sharedPart } from '../../src/server/serialize.js'

const stored = {
  id: 'n1',
  title: 'Deploy "api"',
  body: 'line\nbreak ✓',
  priority: 'high' as const,
  timestamp: '2026-11-25T00:00:00.000Z',
  data: { build: 812, tags: ['a'] },
  topic: 'deploys',
}

describe('notification frames', () => {
  it('completes the shared part into a valid frame per recipient', () => {
    const shared = sharedPart(stored)
    for (const [seq, read] of [
      [1, false],
      [4711, true],
    ] as const) {
      const text = notificationFrame(shared, seq, read)
      expect(JSON.parse(text)).toEqual({ type: 'notification', ...stored, seq, read })
      expect(parseServerFrame(text)).toMatchObject({ type: 'notification', seq })
    }
  })

  it('stringifies a notification once however many recipients it has', () => {
    const spy = vi.spyOn(JSON, 'stringify')
    const shared = sharedPart(stored)
    const frames = Array.from({ length: 1000 }, (_, i) => notificationFrame(shared, i + 1, false))
    expect(spy).toHaveBeenCalledTimes(1)
    spy.mockRestore()
    expect(new Set(frames).size).toBe(1000)
  })
})

describe('history frames', () => {
  it('wraps items serialised already into a valid frame, with next and requestId when given', () => {
    const item = { ...stored, seq: 3, read: false }
    const text = historyFrame([JSON.stringify(item)], { next: 3, requestId: 'h1' })
    expect(JSON.parse(text)).toEqual({ type: 'history', next: 3, requestId: 'h1', items: [item] })
    expect(parseServerFrame(text)).toMatchObject({ type: 'history' })
    expect(JSON.parse(historyFrame([], {}))).toEqual({ type: 'history', items: [] })
  })
})
