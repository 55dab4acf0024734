/**
 * On an app's own server, `handleRequest(req, res)` serves belfry's routes (README: it "serves its HTTP
 * routes … it resolves `false` for any other path"). An admin route whose store call fails (a database
 * outage) is answered by belfry, as on belfry's own server (500 there) and as a publish is (503): it does
 * not reject handleRequest() with the request left unanswered, which an app's `async` request handler
 * (`if (await server.handleRequest(req, res)) return`) turns into an unhandled rejection.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, it, onTestFinished } from 'vitest'
import { NotificationServer, SqliteStore } from '../../src/server/index.js'
import { API_KEY, SECRET } from '../helpers/server.js'

let http: Server | undefined
let belfry: NotificationServer | undefined
afterEach(async () => {
  await belfry?.close()
  await new Promise((resolve) => http?.close(resolve))
  http = undefined
  belfry = undefined
})

const outage = () => Promise.reject(new Error('the database went away'))

describe('handleRequest() on an app’s own server: an admin route whose store fails', () => {
  it.each([
    ['GET', '/api/admin/users?id=ann', undefined, (s: SqliteStore) => (s.user = outage)],
    ['POST', '/api/admin/unsubscribe', { userId: 'ann', topics: ['team-a'] }, (s: SqliteStore) => (s.unsubscribe = outage)],
    ['POST', '/api/admin/prune', { maxPerUser: 1 }, (s: SqliteStore) => (s.prune = outage)],
  ] as const)('%s %s is answered (5xx with a JSON error); handleRequest() does not reject', async (method, path, body, fail) => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-review-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const store = new SqliteStore(join(dir, 'belfry.db'))
    /** What handleRequest() rejected with: the app's handler keeps it and cuts the request it was handed. */
    const rejected: unknown[] = []
    http = createServer((req, res) => {
      belfry!.handleRequest(req, res).then(
        (served) => {
          if (!served) res.writeHead(404).end()
        },
        (error: unknown) => {
          rejected.push(error)
          res.destroy()
        },
      )
    })
    belfry = new NotificationServer({ secret: SECRET, apiKey: API_KEY, store, server: http, logger: pino({ level: 'silent' }) })
    await belfry.ready()
    await new Promise<void>((resolve) => http!.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
    await belfry.sendToUser('ann', { title: 'one', body: '' })
    fail(store)
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    }).catch((error: unknown) => error as Error)
    expect(rejected).toEqual([])
    expect(res).toBeInstanceOf(Response)
    const answer = res as Response
    expect([500, 503]).toContain(answer.status)
    expect(await answer.json()).toMatchObject({ error: expect.any(String) })
  })
})
