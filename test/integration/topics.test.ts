import { afterEach, describe, expect, it } from 'vitest'
import { ClientPool } from '../helpers/client.js'
import { httpPublish, useServer } from '../helpers/server.js'

const start = useServer()
const clients = new ClientPool()
afterEach(() => clients.closeAll())

describe('NotificationClient: topics the protocol would refuse in a frame with others', () => {
  it('a topic too long for the wire does not cost the other topics of its batch their subscription', async () => {
    const t = await start()
    const { client, events } = await clients.online({ url: t.wsUrl, token: () => t.token('ann') })
    client.subscribe('deploys')
    client.subscribe('x'.repeat(300)) // past the protocol's 256 characters: dropped and reported as the server reports one
    await new Promise((r) => setTimeout(r, 200))
    const res = await httpPublish(t.url, { topic: 'deploys', title: 'shipped', body: '' })
    expect(res.status).toBe(201)
    await new Promise((r) => setTimeout(r, 300))
    // 'deploys' is subscribed, and the error names the refused topic with the server's code.
    expect(events.notifications.map((n) => n.title)).toEqual(['shipped'])
    expect(events.errors.map((e) => e.code)).toEqual(['topic_too_long'])
  })

  it('an app following more than 500 topics (the server allows 1,000) gets them: the client sends them in frames the protocol takes', async () => {
    const t = await start({ limits: { maxSubscriptionsPerUser: 1000 } })
    const { client, events } = await clients.online({ url: t.wsUrl, token: () => t.token('ann') })
    for (let i = 0; i < 501; i++) client.subscribe(`topic-${i}`)
    await new Promise((r) => setTimeout(r, 300))
    expect((await httpPublish(t.url, { topic: 'topic-0', title: 'first', body: '' })).status).toBe(201)
    await new Promise((r) => setTimeout(r, 300))
    expect(events.notifications.map((n) => n.title)).toEqual(['first'])
    expect(events.errors).toEqual([])
  })
})
