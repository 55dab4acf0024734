import { afterEach, describe, expect, it } from 'vitest'
import { ClientPool } from '../helpers/client.js'
import { httpPublish, useServer } from '../helpers/server.js'

const start = useServer()
const clients = new ClientPool()
afterEach(() => clients.closeAll())

/** The user's stored subscriptions, through dev mode's route (the demo's Topics card). */
async function storedTopics(url: string, user: string): Promise<string[]> {
  const res = await fetch(`${url}/api/dev/topics?user=${user}`)
  return ((await res.json()) as { topics: string[] }).topics.sort()
}

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

  // A topic cut in the middle of an emoji (`name.slice(0, n)`) ends in a lone surrogate; one built from
  // user input may hold U+0000. No store keeps either: the server refuses such a topic on its own (bad_topic).
  for (const [what, bad] of [
    ['a lone surrogate', 'team-🚀'.slice(0, 6)],
    ['U+0000', 'team\u0000a'],
  ] as const) {
    it(`a topic with ${what} does not cost the other topics of its batch their subscription, and is reported as bad_topic`, async () => {
      const t = await start({ dev: true })
      const { client, events } = await clients.online({ url: t.wsUrl, token: () => t.token('ann') })
      client.subscribe('deploys')
      client.subscribe('alerts')
      client.subscribe(bad)
      await expect.poll(() => events.errors.length, { timeout: 3000 }).toBeGreaterThan(0)
      // What the error said: the frame as a whole was refused, the topics in it with it.
      const said = events.errors.map((e) => `${e.code}: ${e.message}`)
      expect(await storedTopics(t.url, 'ann'), `errors: ${JSON.stringify(said)}`).toEqual(['alerts', 'deploys'])
      expect(events.errors.map((e) => e.code)).toEqual(['bad_topic'])
    })
  }

  it('a topic the server refused as bad_topic is dropped: the topics the client restores after a reconnect are subscribed', async () => {
    const t = await start({ dev: true })
    const { client, events } = await clients.online({ url: t.wsUrl, token: () => t.token('ann') })
    client.subscribe('team\u0000a')
    await expect.poll(() => events.errors.length, { timeout: 3000 }).toBeGreaterThan(0)
    client.subscribe('deploys') // a later task: its own frame, subscribed
    await expect.poll(() => storedTopics(t.url, 'ann'), { timeout: 3000 }).toEqual(['deploys'])
    // A reconnect to a store that lost the subscription (a new database): the restore batch holds both topics.
    await fetch(`${t.url}/api/dev/drop?user=ann`, { method: 'POST' })
    await t.restart({ freshDatabase: true })
    await expect.poll(() => events.statuses.filter((s) => s.to === 'online').length, { timeout: 5000 }).toBeGreaterThan(1)
    await expect.poll(() => storedTopics(t.url, 'ann'), { timeout: 3000 }).toEqual(['deploys'])
  })
})
