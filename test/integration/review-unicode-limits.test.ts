/**
 * Review: the README and docs/protocol.md give the publish limits in
 * characters ("title" 1–256 characters, "body" ≤ 8192, a user id 1–64, a
 * topic 1–128), but publish-input.ts and guards.ts compare `string.length`,
 * which counts UTF-16 code units: a character outside the BMP (an emoji, a
 * CJK extension ideograph) counts twice. A title of 256 emoji (256
 * characters, 1 KiB as UTF-8) is refused with a 400 that says "1–256
 * characters"; a publisher counting characters (Python's len, Go's
 * utf8.RuneCountInString) cannot tell what is accepted.
 */
import { describe, expect, it } from 'vitest'
import { httpPublish, useServer } from '../helpers/server.js'

const start = useServer()
const EMOJI = '\u{1F514}' // 🔔: one character, two UTF-16 code units

describe('publish limits counted in characters, as documented', () => {
  it('a title of exactly 256 characters outside the BMP is accepted; 257 is refused', async () => {
    const s = await start()
    expect([...EMOJI.repeat(256)]).toHaveLength(256)
    const at = await httpPublish(s.url, { userId: 'ann', title: EMOJI.repeat(256), body: '' })
    const past = await httpPublish(s.url, { userId: 'ann', title: EMOJI.repeat(257), body: '' })
    expect({ at: at.status, past: past.status }).toEqual({ at: 201, past: 400 })
  })

  it('a body of 8192 characters outside the BMP is accepted', async () => {
    const s = await start()
    const res = await httpPublish(s.url, { userId: 'ann', title: 't', body: EMOJI.repeat(8192) })
    expect(res.status).toBe(201)
  })

  it('a userId of 64 characters outside the BMP is accepted', async () => {
    const s = await start()
    const res = await httpPublish(s.url, { userId: EMOJI.repeat(64), title: 't', body: '' })
    expect(res.status).toBe(201)
  })
})
