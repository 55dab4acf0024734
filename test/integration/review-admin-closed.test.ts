/**
 * An app's own server (`server` option) outlives belfry: after belfry's `close()` it still takes requests and may hand them to `handleRequest`. A publish then answers 503 `closing`
 * (README, HTTP API: "503 while the server is closing"); an admin prune must not claim a pass it did
 * not run: its pruner is closed, and it answered `200 {"removed": 0, …}`.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { NotificationServer } from '../../src/server/index.js'
import { API_KEY, SECRET } from '../helpers/server.js'

let http: Server | undefined
let belfry: NotificationServer | undefined
afterEach(async () => {
  await belfry?.close()
  await new Promise((resolve) => http?.close(resolve))
  http = undefined
  belfry = undefined
})

/** An app's server that hands every request to belfry, and answers 404 what belfry does not serve. */
async function appWithBelfry(): Promise<string> {
  http = createServer((req, res) => {
    belfry!.handleRequest(req, res).then(
      (served) => {
        if (!served) res.writeHead(404).end()
      },
      () => res.destroy(),
    )
  })
  belfry = new NotificationServer({
    secret: SECRET,
    apiKey: API_KEY,
    database: ':memory:',
    server: http,
    retention: { maxPerUser: 1 },
    logger: pino({ level: 'silent' }),
  })
  await belfry.ready()
  await new Promise<void>((resolve) => http!.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(http.address() as AddressInfo).port}`
}

const call = (url: string, method: string, path: string, body?: unknown) =>
  fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  })

describe('the admin prune of a closed server, on an app’s own server', () => {
  it('answers 503 closing, as a publish does, not 200 {"removed": 0} for a pass it never ran', async () => {
    const url = await appWithBelfry()
    for (const title of ['one', 'two']) await belfry!.sendToUser('ann', { title, body: '' })
    await belfry!.close()
    const publish = await call(url, 'POST', '/api/notifications', { userId: 'ann', title: 'late', body: '' })
    expect([publish.status, await publish.json()]).toEqual([503, { error: 'closing', message: 'server is shutting down' }])
    // With the configured rule (maxPerUser 1, which would remove 'one') and with one in the body.
    for (const body of [undefined, { maxPerUser: 1 }]) {
      const res = await call(url, 'POST', '/api/admin/prune', body)
      expect([res.status, await res.json()], JSON.stringify(body)).toEqual([503, expect.objectContaining({ error: 'closing' })])
    }
  })
})
