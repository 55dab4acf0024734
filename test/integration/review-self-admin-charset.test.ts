import { describe, expect, it } from 'vitest'
import { API_KEY, authedClient, useServer } from '../helpers/server.js'

const start = useServer()

// The publish route now refuses a body declared in a charset other than UTF-8 (415): read as UTF-8, it is other
// text than the sender's. POST /api/admin/unsubscribe reads such a body as UTF-8 all the same: "Ã©" sent in
// ISO-8859-1 (bytes C3 A9) is read as the user "é", whose subscriptions it ends, answering 200.
describe('POST /api/admin/unsubscribe with a body declared in another charset', () => {
  it('refuses it (415) rather than end another user’s subscriptions', async () => {
    const s = await start()
    const other = await authedClient(s, 'é')
    other.send({ type: 'subscribe', topics: ['team-a'], requestId: 's' })
    await other.next((f) => f.requestId === 's')
    const body = Buffer.from('{"userId":"Ã©","topics":["team-a"]}', 'latin1')
    const res = await fetch(`${s.url}/api/admin/unsubscribe`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json; charset=iso-8859-1' },
      body,
    })
    const answer = await res.json()
    other.close()
    expect([res.status, answer]).toEqual([415, expect.objectContaining({ error: 'unsupported_media_type' })])
  })
})
