import { afterEach, describe, expect, it } from 'vitest'
import type { NotificationClient } from '../../src/index.js'
import { ClientPool, type Recorder } from '../helpers/client.js'
import { type TestServer, useServer } from '../helpers/server.js'

const start = useServer()
const clients = new ClientPool()
afterEach(() => clients.closeAll())

/** How many subscriptions the store holds for the user, through dev mode's route (the demo's Topics card). */
async function storedTopics(url: string, user: string): Promise<number> {
  const res = await fetch(`${url}/api/dev/topics?user=${user}`)
  return ((await res.json()) as { topics: string[] }).topics.length
}

/** Subscribes `topics` in one task, then waits until the store holds them all or the client was cut off. */
async function subscribeAll(t: TestServer, client: NotificationClient, events: Recorder, topics: string[]): Promise<void> {
  for (const topic of topics) client.subscribe(topic)
  await expect
    .poll(async () => (await storedTopics(t.url, 'ann')) === topics.length || events.count('reconnecting') > 0, { timeout: 5000 })
    .toBe(true)
  // The socket was not closed under the client (ws refuses a frame over maxFrameBytes with 1009) ...
  expect(events.statuses.filter((s) => s.to === 'reconnecting').map((s) => s.reason)).toEqual([])
  // ... and every topic is the user's.
  expect(await storedTopics(t.url, 'ann')).toBe(topics.length)
}

// The client splits its topics into frames of at most 500 (the protocol's count), but never by size: a batch of
// topics that are each within every documented limit can be larger than the server's maxFrameBytes (64 KiB),
// which ws refuses by closing the socket with 1009. The client reconnects and restores the same batch: forever.
describe('NotificationClient: a batch of valid topics larger than the server takes in one frame', () => {
  it('at the server defaults: 200 topics (maxSubscriptionsPerUser) of 128 characters (maxTopicLength), in CJK', async () => {
    const t = await start({ dev: true })
    const { client, events } = await clients.online({ url: t.wsUrl, token: () => t.token('ann') })
    // 128 UTF-16 code units each (the length the server checks), 3 UTF-8 bytes per character: 200 × ~390 B ≈ 77 KB.
    const topics = Array.from({ length: 200 }, (_, i) => `${String(i).padStart(3, '0')}${'通知'.repeat(63)}`.slice(0, 128))
    await subscribeAll(t, client, events, topics)
  })

  it('with maxTopicLength 256 (the documented maximum): 300 ASCII topics of 256 characters', async () => {
    const t = await start({ dev: true, limits: { maxTopicLength: 256, maxSubscriptionsPerUser: 500 } })
    const { client, events } = await clients.online({ url: t.wsUrl, token: () => t.token('ann') })
    const topics = Array.from({ length: 300 }, (_, i) => `${String(i).padStart(3, '0')}-${'t'.repeat(252)}`)
    await subscribeAll(t, client, events, topics)
  })
})
