import { afterEach, describe, expect, it } from 'vitest'
import { ClientPool } from '../helpers/client.js'
import { useServer } from '../helpers/server.js'

const start = useServer()
const clients = new ClientPool()
afterEach(() => clients.closeAll())

/** The user's stored subscriptions, through dev mode's route (the demo's Topics card). */
async function storedTopics(url: string, user: string): Promise<string[]> {
  const res = await fetch(`${url}/api/dev/topics?user=${user}`)
  return ((await res.json()) as { topics: string[] }).topics.sort()
}

describe('NotificationClient: a topic the wire refuses for its characters, subscribed with others', () => {
  // A topic cut in the middle of an emoji (`name.slice(0, n)`) ends in a lone surrogate; one built from
  // user input may hold U+0000. The server's frame parser refuses such a topic with the whole frame
  // (bad_frame), as it does one past 256 characters; the client, which drops that one itself so that
  // "the other topics of its frame are not refused with it", checks only the length.
  for (const [what, bad] of [
    ['a lone surrogate', 'team-🚀'.slice(0, 6)],
    ['U+0000', 'team\u0000a'],
  ] as const) {
    it(`${what}: the other topics of its batch are subscribed, and the bad one is reported on its own`, async () => {
      const t = await start({ dev: true })
      const { client, events } = await clients.online({ url: t.wsUrl, token: () => t.token('ann') })
      client.subscribe('deploys')
      client.subscribe('alerts')
      client.subscribe(bad)
      await expect.poll(() => events.errors.length, { timeout: 3000 }).toBeGreaterThan(0)
      // What the error said: the frame as a whole was refused, the topics in it with it.
      const said = events.errors.map((e) => `${e.code}: ${e.message}`)
      expect(await storedTopics(t.url, 'ann'), `errors: ${JSON.stringify(said)}`).toEqual(['alerts', 'deploys'])
    })
  }

  it('a bad topic held by the client does not keep the topics it restores after a reconnect from being subscribed', async () => {
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
