import { afterEach, describe, expect, it, vi } from 'vitest'
import { createStore, GET, LIST, RETAIN } from '../../src/react/store.js'
import { mintToken } from '../../src/server/index.js'
import { type ArticleServer, startArticleServer } from '../helpers/article-server.js'
import { ClientPool } from '../helpers/client.js'

let article: ArticleServer | undefined
const clients = new ClientPool()
afterEach(async () => {
  clients.closeAll()
  await article?.close()
  article = undefined
})

const articleToken = (userId: string) => mintToken('the-article-never-checks-this-0123', userId)

// 459150d: against the article's server a notification without an id gets `JSON.stringify(frame)` as
// its id, on the ground that "the service stamps each send" (docs/protocol.md: "so each notification
// has its own id"). The stamp is `new Date().toISOString()`: millisecond resolution. Two sends of the
// same text in one millisecond (two "New message" for two messages that came together, a loop over
// events) get the same id, and belfry/react's list (each id once) shows one of them.
describe('review: belfry client against the article server, two identical sends in the same millisecond', () => {
  it('get two ids, and belfry/react lists both', async () => {
    article = await startArticleServer()
    const a = article
    const { client, events } = await clients.online({ url: a.url, token: () => articleToken('user123') })
    const store = createStore(client)
    store[GET]()
    const release = store[RETAIN]()
    try {
      // Both sends stamped in one millisecond (the article's service stamps as it sends); tried again
      // in the rare case that a millisecond boundary falls between them.
      let pushed = 0
      let same = false
      for (let tries = 0; tries < 20 && !same; tries++) {
        const before = Date.now()
        a.sendToUser('user123', { title: 'New message', body: 'You have a new message' })
        a.sendToUser('user123', { title: 'New message', body: 'You have a new message' })
        same = Date.now() === before
        pushed += 2
        await vi.waitFor(() => expect(events.notifications.length).toBe(pushed))
      }
      expect(same).toBe(true)
      const [x, y] = events.notifications.slice(-2)
      expect(x!.id).not.toBe(y!.id)
      expect(store[0][LIST].notifications.filter((n) => n.title === 'New message')).toHaveLength(pushed)
    } finally {
      release()
    }
  })
})
