/**
 * Review: a publish body declared in a charset other than UTF-8 is read as UTF-8
 * all the same. JSON on the wire is UTF-8 (RFC 8259 §8.1): a body declared
 * `charset=iso-8859-1` is either refused (415) or read as what it declares, never
 * stored as other text than the publisher sent.
 */
import { request } from 'node:http'
import { expect, it } from 'vitest'
import { API_KEY, authedClient, useServer } from '../helpers/server.js'

const start = useServer()

function post(port: number, contentType: string, body: Buffer): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/api/notifications',
        headers: { 'content-type': contentType, authorization: `Bearer ${API_KEY}`, 'content-length': body.length },
      },
      (res) => {
        let text = ''
        res.on('data', (d: Buffer) => {
          text += d.toString()
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }))
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

it('does not store a body declared ISO-8859-1 as the UTF-8 text its bytes happen to spell', async () => {
  const s = await start()
  const ann = await authedClient(s, 'ann')
  // The publisher's title is "Ã©" (two characters), written in the charset it declares: bytes C3 A9.
  const body = Buffer.from('{"userId":"ann","title":"Ã©","body":""}', 'latin1')
  const res = await post(s.port, 'application/json; charset=iso-8859-1', body)
  if (res.status === 201) {
    // Taken: then as the text it declared, not "é".
    await expect.poll(() => ann.frames.find((f) => f.type === 'notification')?.title).toBe('Ã©')
  } else {
    expect(res.status).toBe(415)
    expect(res.json).toMatchObject({ error: 'unsupported_media_type' })
  }
})
