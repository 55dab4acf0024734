import { describe, expect, it } from 'vitest'
import {
  CloseCode,
  MAX_IDS_PER_FRAME,
  MAX_TOPIC_LENGTH,
  MAX_TOPICS_PER_FRAME,
  parseClientFrame,
  parseRetryReason,
  parseServerFrame,
  retryReason,
} from '../../src/protocol/index.js'

const bad = (text: string) => {
  const r = parseClientFrame(text)
  if (r.ok) throw new Error(`accepted ${text}`)
  return r
}

describe('parseClientFrame', () => {
  it('keeps no requestId that is not valid on a type that defines none (ack, auth): an error reply would echo it', () => {
    for (const bad of [{ x: 1 }, 7, '\ud800', 'z'.repeat(65)]) {
      const parsed = parseClientFrame(JSON.stringify({ type: 'ack', seq: 1, requestId: bad }))
      expect(parsed).toEqual({ ok: true, frame: { type: 'ack', seq: 1 } })
    }
    expect(parseClientFrame('{"type":"ack","seq":1,"requestId":"r1"}')).toEqual({
      ok: true,
      frame: { type: 'ack', seq: 1, requestId: 'r1' },
    })
  })

  it('accepts each well-formed client frame', () => {
    const frames = [
      { type: 'auth', token: 't', userId: 'u', since: 3 },
      { type: 'auth', token: 't' },
      { type: 'ack', seq: 0 },
      { type: 'resume', since: 10, requestId: 'r1' },
      { type: 'mark_read', ids: ['a', 'b'] },
      { type: 'mark_read', all: true, requestId: 'r2' },
      { type: 'mark_read', all: true, seq: 0 },
      { type: 'mark_read', all: true, seq: 12 },
      { type: 'subscribe', topic: 'deploys' },
      { type: 'unsubscribe', topic: 'deploys' },
      { type: 'history', before: 5, limit: 20 },
      { type: 'history' },
      { type: 'ping', requestId: 'p' },
    ]
    for (const f of frames) expect(parseClientFrame(JSON.stringify(f))).toEqual({ ok: true, frame: f })
  })

  it('refuses text that is not JSON, or not an object with a string type', () => {
    expect(bad('{').code).toBe('bad_json')
    expect(bad('').code).toBe('bad_json')
    expect(bad('[]').code).toBe('bad_frame')
    expect(bad('null').code).toBe('bad_frame')
    expect(bad('"auth"').code).toBe('bad_frame')
    expect(bad('{"type":5}').code).toBe('bad_frame')
  })

  it('refuses unknown types, including prototype keys', () => {
    expect(bad('{"type":"launch"}').code).toBe('unknown_type')
    expect(bad('{"type":"__proto__"}').code).toBe('unknown_type')
    expect(bad('{"type":"toString"}').code).toBe('unknown_type')
  })

  it('names the field that is wrong and echoes a valid requestId', () => {
    const r = bad('{"type":"history","limit":1000,"requestId":"h1"}')
    expect(r).toMatchObject({ code: 'bad_frame', requestId: 'h1' })
    expect(r.message).toContain('"limit"')
    expect(bad('{"type":"ack","seq":-1}').message).toContain('"seq"')
    expect(bad('{"type":"ack","seq":1.5}').message).toContain('"seq"')
    expect(bad('{"type":"auth","token":7}').message).toContain('"token"')
    expect(bad('{"type":"subscribe","topic":5}').message).toContain('"topic"')
    expect(bad(`{"type":"subscribe","topic":"${'x'.repeat(MAX_TOPIC_LENGTH + 1)}"}`).message).toContain('"topic"')
  })

  it('refuses U+0000 in notification ids, as the publish API does; a topic is judged on its own (bad_topic), not with its frame', () => {
    expect(bad('{"type":"mark_read","ids":["id\\u0000"]}').message).toContain('"ids"')
    expect(parseClientFrame('{"type":"subscribe","topics":["a","b\\u0000","c\\ud800"]}')).toMatchObject({ ok: true })
    expect(parseClientFrame('{"type":"subscribe","topic":"news\\u0001"}')).toMatchObject({ ok: true })
  })

  it('leaves an auth frame’s token and userId to be judged by the auth (4001, 4003), not as the frame’s shape', () => {
    expect(parseClientFrame('{"type":"auth","token":"t","userId":"ann\\u0000"}')).toMatchObject({ ok: true })
    expect(parseClientFrame(JSON.stringify({ type: 'auth', token: 't'.repeat(9000), userId: 'u'.repeat(65) }))).toMatchObject({ ok: true })
    expect(parseClientFrame('{"type":"auth","token":""}')).toMatchObject({ ok: true })
    expect(bad('{"type":"auth","token":"t","userId":7}').message).toContain('"userId"')
  })

  it.each([
    ['mark_read', 'ids', { all: true }, MAX_IDS_PER_FRAME],
    ['subscribe', 'topics', { topic: 'a' }, MAX_TOPICS_PER_FRAME],
    ['unsubscribe', 'topics', { topic: 'a' }, MAX_TOPICS_PER_FRAME],
  ] as const)('%s wants exactly one of its two forms, with a bounded %s list', (type, list, other, max) => {
    const frame = (fields: object) => JSON.stringify({ type, ...fields })
    expect(parseClientFrame(frame({ [list]: ['a', 'b'] }))).toMatchObject({ ok: true })
    expect(parseClientFrame(frame(other))).toMatchObject({ ok: true })
    expect(bad(frame({})).message).toContain('either')
    expect(bad(frame({ [list]: ['a'], ...other })).message).toContain('either')
    expect(bad(frame({ [list]: [] })).message).toContain(`"${list}"`)
    expect(bad(frame({ [list]: ['a', ''] })).message).toContain(`"${list}"`)
    expect(bad(frame({ [list]: Array.from({ length: max + 1 }, (_, i) => `x${i}`) })).message).toContain(`"${list}"`)
  })

  it('takes all: true only', () => {
    expect(bad('{"type":"mark_read","all":false}').message).toContain('"all"')
  })

  it('takes a bound (seq) on mark_read with all only, a non-negative integer', () => {
    expect(bad('{"type":"mark_read","all":true,"seq":-1}').message).toContain('"seq"')
    expect(bad('{"type":"mark_read","all":true,"seq":2.5}').message).toContain('"seq"')
    expect(bad('{"type":"mark_read","all":true,"seq":"3"}').message).toContain('"seq"')
    expect(bad('{"type":"mark_read","ids":["a"],"seq":3,"requestId":"m"}')).toMatchObject({
      code: 'bad_frame',
      message: 'mark_read: "seq" goes with "all", not with "ids"',
      requestId: 'm',
    })
  })
})

describe('parseServerFrame', () => {
  it('accepts the article server frames (no id, seq or read)', () => {
    const f = parseServerFrame('{"type":"notification","title":"T","body":"B","priority":"high","timestamp":"2026-01-01T00:00:00Z"}')
    expect(f).toMatchObject({ type: 'notification', title: 'T' })
  })

  it('takes an article server frame with an id of any type (the publisher spread it); a frame with a seq needs a string id', () => {
    expect(parseServerFrame('{"type":"notification","title":"T","body":"B","id":42}')).toMatchObject({ id: 42 })
    expect(parseServerFrame('{"type":"notification","title":"T","body":"B","id":42,"seq":1}')).toBeUndefined()
  })

  it('returns undefined for malformed or unknown frames', () => {
    expect(parseServerFrame('nope')).toBeUndefined()
    expect(parseServerFrame('{"type":"notification","title":1,"body":"b"}')).toBeUndefined()
    expect(parseServerFrame('{"type":"notification","title":"t","body":"b","priority":"urgent"}')).toBeUndefined()
    expect(parseServerFrame('{"type":"notification","title":"t","body":"b","seq":-2}')).toBeUndefined()
    expect(parseServerFrame('{"type":"read","ids":"a","all":false,"seq":1,"unreadCount":0}')).toBeUndefined()
    expect(parseServerFrame('{"type":"wat"}')).toEqual({ type: 'wat' }) // forward compatible: the client ignores it
    expect(parseServerFrame('{"type":"history","items":5}')).toBeUndefined()
  })
})

describe('retry reasons', () => {
  it('round-trips a delay through a close reason that fits in 123 bytes', () => {
    const reason = retryReason('too many connections', 30_000)
    expect(parseRetryReason(reason)).toBe(30_000)
    expect(new TextEncoder().encode(reason).length).toBeLessThanOrEqual(123)
    expect(parseRetryReason('rate limited')).toBeUndefined()
  })

  it('keeps close codes in the ranges RFC 6455 allows', () => {
    for (const code of Object.values(CloseCode)) expect([1000, 1001, 1009, 1011].includes(code) || (code >= 4000 && code < 5000)).toBe(true)
  })
})
