import { describe, expect, it } from 'vitest'
import { API_KEY, useServer } from '../helpers/server.js'

const start = useServer()

// README: "415 ... for one declared in another charset than UTF-8 that holds text past ASCII". A body really
// written in ISO-8859-1 ("café": E9 then a quote) is no valid UTF-8, so bodyText() refuses it (400 "not valid UTF-8")
// before misread() sees it: 415 only reaches latin1 bytes that happen to be valid UTF-8 (mojibake such as "Ã©").
describe('a body declared ISO-8859-1 with a character past ASCII', () => {
  const latin1 = (json: string) => Buffer.from(json, 'latin1')
  const send = async (url: string, body: Buffer) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json; charset=iso-8859-1' },
      body,
    })
    return [res.status, ((await res.json()) as { error: string }).error]
  }

  it('is refused 415 on the publish route, as documented', async () => {
    const s = await start()
    expect(await send(`${s.url}/api/notifications`, latin1('{"userId":"alice","title":"café","body":""}'))).toEqual([
      415,
      'unsupported_media_type',
    ])
  })

  it('is refused 415 on the admin routes, as documented', async () => {
    const s = await start()
    expect(await send(`${s.url}/api/admin/unsubscribe`, latin1('{"userId":"josé","topics":["team-a"]}'))).toEqual([
      415,
      'unsupported_media_type',
    ])
  })
})
