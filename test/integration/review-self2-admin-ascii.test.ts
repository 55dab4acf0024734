/**
 * Review: the admin POST routes now refuse (415) every body declared in a charset other than UTF-8, also one that
 * UTF-8 reads exactly as sent: US-ASCII (a subset of UTF-8), and a prune with no body at all (nothing to read).
 */
import { describe, expect, it } from 'vitest'
import { API_KEY, useServer } from '../helpers/server.js'

const start = useServer()

describe('admin API: a body UTF-8 reads as it was sent', () => {
  it('prunes with a body declared US-ASCII, or with no body under a Latin-1 Content-Type, as without one', async () => {
    const t = await start({ retention: { maxPerUser: 2 } })
    const post = (type: string, body?: string) =>
      fetch(`${t.url}/api/admin/prune`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': type },
        ...(body !== undefined && { body }),
      })
    // ASCII bytes are the same text in UTF-8: nothing to misread.
    expect((await post('application/json; charset=us-ascii', '{"maxPerUser":1}')).status).toBe(200)
    // No body: nothing to read at all (an HTTP client whose default Content-Type names ISO-8859-1).
    expect((await post('text/plain; charset=ISO-8859-1')).status).toBe(200)
  })
})
