/**
 * POST /api/admin/unsubscribe takes what its own rules allow: `{userId, topics}` with 1–1000 topics of
 * 1–maxTopicLength characters, and a user's every topic at their longest (admin.ts: MAX_UNSUBSCRIBE_BODY,
 * "a user's topics, at their longest"). A body within those rules is no 413.
 */
import { describe, expect, it } from 'vitest'
import { range } from '../helpers/client.js'
import { API_KEY, authedClient, httpPublish, useServer } from '../helpers/server.js'

const start = useServer()

function unsubscribe(url: string, body: unknown) {
  return fetch(`${url}/api/admin/unsubscribe`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
}

/** A topic of exactly `length` characters, distinct by `i`, the rest filled with `fill`. */
const topic = (i: number, fill: string, length = 128) => `t${i}:`.padEnd(length, fill)

describe('POST /api/admin/unsubscribe: a body within its own rules', () => {
  it('ends every topic a user holds at the default limits (200 topics of 128 characters), in one call', async () => {
    const t = await start()
    // 200 subscriptions (maxSubscriptionsPerUser) of 128 characters (maxTopicLength): CJK, 3 bytes each in UTF-8.
    const topics = range(1, 200).map((i) => topic(i, '通'))
    const ann = await authedClient(t, 'ann')
    for (let i = 0; i < topics.length; i += 50) {
      const requestId = `s${i}`
      ann.send({ type: 'subscribe', topics: topics.slice(i, i + 50), requestId })
      expect(await ann.next((f) => f.requestId === requestId)).toMatchObject({ type: 'subscribed', topics: topics.slice(i, i + 50) })
    }
    ann.close()
    const res = await unsubscribe(t.url, { userId: 'ann', topics })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ userId: 'ann', topics })
    expect((await httpPublish(t.url, { topic: topics[0], title: 'after', body: '' })).json.recipients).toBe(0)
  })

  it('takes the 1000 topics of maxTopicLength its 400 message allows (body.topics: an array of 1–1000 topics)', async () => {
    const t = await start({ limits: { maxSubscriptionsPerUser: 1000 } })
    const topics = range(1, 1000).map((i) => topic(i, 'x'))
    const res = await unsubscribe(t.url, { userId: 'ann', topics })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ userId: 'ann', topics })
  })
})
