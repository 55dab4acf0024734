import { expect, it } from 'vitest'
import { API_KEY, useServer } from '../helpers/server.js'

const start = useServer()

// CHANGELOG: "ASCII, which every such charset writes as UTF-8 does, is taken". UTF-16 does not: ASCII JSON in UTF-16LE
// is valid UTF-8 full of U+0000 and nothing past U+007F, so misread() lets it through and JSON.parse answers 400 "body
// is not valid JSON" (before c90b9f9: 415, "send the body ... in UTF-8"), for JSON that is valid in its declared charset.
it('a body declared and written in UTF-16 is refused 415 (not in UTF-8), not 400 "not valid JSON"', async () => {
  const s = await start()
  const res = await fetch(`${s.url}/api/notifications`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json; charset=utf-16le' },
    body: Buffer.from('{"userId":"alice","title":"t","body":""}', 'utf16le'),
  })
  expect([res.status, await res.json()]).toEqual([415, expect.objectContaining({ error: 'unsupported_media_type' })])
})
