import { afterEach, describe, expect, it, vi } from 'vitest'
import { createStore, GET, LIST, RETAIN } from '../../src/react/store.js'
import { mintToken } from '../../src/server/index.js'
import { startArticleService } from '../helpers/article-original.js'
import { ClientPool } from '../helpers/client.js'

/**
 * belfry's client against the article's service (test/helpers/article-original.ts): the ids it makes for
 * notifications that come without one. docs/protocol.md ("belfry's client against the article's server")
 * promises each notification its own id, by which belfry/react's list and belfry/desktop's tags tell them
 * apart, and CHANGELOG says two sends of the same text in one millisecond get two ids.
 */

const clients = new ClientPool()
const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  clients.closeAll()
  for (const close of closers.splice(0)) await close()
})

/** The article's service never checks the token; a JWT lets the client read its `sub`. */
const token = (userId: string) => mintToken('the-article-never-checks-this-0123', userId)

describe('belfry client → the article’s service: ids of notifications sent without one', () => {
  it('gives the same text sent twice in one millisecond, with another notification between, two ids; belfry/react lists all three', async () => {
    const article = await startArticleService()
    closers.push(article.close)
    const { client, events } = await clients.online({ url: article.url, token: () => token('user123') })
    const store = createStore(client)
    store[GET]()
    const release = store[RETAIN]()
    try {
      // The article's own example text, twice, with another notification between them: a burst, one millisecond.
      // Tried again in the rare case that a millisecond boundary falls inside the burst.
      let pushed = 0
      let same = false
      for (let tries = 0; tries < 20 && !same; tries++) {
        const before = Date.now()
        article.service.sendToUser('user123', { title: 'New Message', body: 'You have received a new message', priority: 'high' })
        article.service.sendToUser('user123', { title: 'New follower', body: 'Ann follows you', priority: 'low' })
        article.service.sendToUser('user123', { title: 'New Message', body: 'You have received a new message', priority: 'high' })
        same = Date.now() === before
        pushed += 3
        await vi.waitFor(() => expect(events.notifications.length).toBe(pushed))
      }
      expect(same).toBe(true)
      const burst = events.notifications.slice(-3)
      expect(burst.map((n) => n.title)).toEqual(['New Message', 'New follower', 'New Message'])
      // Three notifications, three ids.
      expect(new Set(burst.map((n) => n.id)).size).toBe(3)
      // belfry/react's list keeps each id once: every notification that came is in it.
      expect(store[0][LIST].notifications).toHaveLength(pushed)
      expect(events.errors).toEqual([])
    } finally {
      release()
    }
  })
})
