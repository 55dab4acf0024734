/**
 * `POST /api/admin/unsubscribe` is to read any body its own rules allow (CHANGELOG, Unreleased: "reads a body
 * as large as its own rules allow (1,000 topics of `maxTopicLength`)"; admin.ts: "its most topics at their
 * longest, each character as JSON may write it (`\uXXXX`: 6 bytes), with their quotes and commas, and the
 * rest"). The cap, 1000 × (maxTopicLength × 6 + 3) + 1024, budgets 3 bytes a topic for its quotes and comma but
 * none for the whitespace JSON allows between them. Python's `json.dumps` (and so `requests.post(url, json=…)`)
 * writes every non-ASCII character as `\uXXXX` and separates items with ", ": 1000 topics of 128 CJK characters
 * then come to a few bytes over the cap, and are refused 413.
 */
import { describe, expect, it } from 'vitest'
import { range } from '../helpers/client.js'
import { API_KEY, useServer } from '../helpers/server.js'

const start = useServer()

/** JSON as Python's `json.dumps(value)` writes it: ensure_ascii (every non-ASCII character as \uXXXX), ", " and ": ". */
function pythonJson(value: unknown): string {
  if (typeof value === 'string') {
    return `"${[...value].map((ch) => (ch.charCodeAt(0) < 0x80 ? JSON.stringify(ch).slice(1, -1) : `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)).join('')}"`
  }
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(', ')}]`
  if (typeof value === 'object' && value !== null) {
    return `{${Object.entries(value)
      .map(([k, v]) => `${pythonJson(k)}: ${pythonJson(v)}`)
      .join(', ')}}`
  }
  return JSON.stringify(value)
}

describe('admin API: unsubscribe bodies within its own rules, as common JSON encoders write them', () => {
  it('takes 1000 topics of 128 CJK characters (the default maxTopicLength) written by Python’s json.dumps', async () => {
    const t = await start({ limits: { maxSubscriptionsPerUser: 1000 } })
    // Each all CJK, distinct by its first characters (i in base 16, from 一).
    const topics = range(1, 1000).map((i) =>
      [...i.toString(16)]
        .map((d) => String.fromCharCode(0x4e00 + Number.parseInt(d, 16)))
        .join('')
        .padEnd(128, '通'),
    )
    const body = pythonJson({ userId: 'ann', topics })
    expect(JSON.parse(body)).toEqual({ userId: 'ann', topics }) // the same request, valid JSON
    const res = await fetch(`${t.url}/api/admin/unsubscribe`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body,
    })
    const answer: unknown = await res.json()
    expect(res.status, `a body of ${Buffer.byteLength(body)} bytes: ${JSON.stringify(answer).slice(0, 120)}`).toBe(200)
    expect(answer).toEqual({ userId: 'ann', topics })
  })
})
