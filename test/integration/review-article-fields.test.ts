/**
 * Review (article compatibility): belfry's client against the article's server, whose
 * notification frames are `{type: 'notification', ...the publisher's fields, timestamp}`: the
 * publisher's object is spread as it is (docs/protocol.md, "The article's protocol"). The docs
 * promise that the client "hands each notification to the app as it arrives", filling in what
 * the article's frames lack.
 */
import { afterEach, expect, it, vi } from 'vitest'
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

it('hands the app a notification of the article’s server whose publisher gave it its database row’s numeric id', async () => {
  article = await startArticleServer()
  const a = article
  const { events } = await clients.online({ url: a.url, token: () => mintToken('the-article-never-checks-this-0123', 'user123') })
  // The article recommends persisting notifications in a database; a publisher that does sends the row's id along.
  a.sendToUser('user123', { id: 42, title: 'New Message', body: 'You have received a new message', priority: 'high' })
  a.sendToUser('user123', { title: 'after', body: 'the next one' })
  await vi.waitFor(() => expect(events.notifications.map((n) => n.title)).toContain('after'))
  expect(events.notifications.map((n) => n.title)).toEqual(['New Message', 'after'])
  expect(events.errors).toEqual([])
})
