/**
 * d51d139: against the article's server a notification without an id gets its frame's text as id,
 * and the same text as the LAST id made gets one '+' more. Its server stamps each send in ms: two
 * sends of the same text in one ms with another send between them (a "New message" twice and a
 * "New like" in one go) give the third the first one's id, and belfry/react's list (each id once)
 * drops it.
 */
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

describe('belfry client → the article’s server: sends in one millisecond', () => {
  it('gives the same text sent twice with another send between them two ids, and belfry/react lists all three', async () => {
    article = await startArticleServer()
    const a = article
    const { client, events } = await clients.online({ url: a.url, token: () => articleToken('user123') })
    const store = createStore(client)
    store[GET]()
    const release = store[RETAIN]()
    try {
      // Tried again in the rare case that a millisecond boundary falls between the sends.
      let pushed = 0
      let same = false
      for (let tries = 0; tries < 20 && !same; tries++) {
        const before = Date.now()
        a.sendToUser('user123', { title: 'New message', body: 'You have a new message' })
        a.sendToUser('user123', { title: 'New like', body: 'Someone liked your post' })
        a.sendToUser('user123', { title: 'New message', body: 'You have a new message' })
        same = Date.now() === before
        pushed += 3
        await vi.waitFor(() => expect(events.notifications.length).toBe(pushed))
      }
      expect(same).toBe(true)
      const last = events.notifications.slice(-3).map((n) => n.id)
      expect(new Set(last).size).toBe(3)
      expect(store[0][LIST].notifications).toHaveLength(pushed)
    } finally {
      release()
    }
  })
})
