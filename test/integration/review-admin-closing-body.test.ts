/**
 * After `close()`, the admin routes answer 503 `closing`, as a publish does (CHANGELOG, Unreleased: "After
 * `close()`, the admin routes answer 503 `closing`, as a publish does: a prune answered 200 `{"removed": 0}` for
 * a pass its closed pruner never ran"). admin.ts checks `accepting()` once, before it reads the body; a publish
 * checks it after (http.ts, publishRoute). On an app's own server (`server` option), whose requests belfry's
 * close() does not wait for, a prune whose body was still arriving when close() came runs on the closed
 * pruner: 200 `{"removed": 0, …}` for a pass that never ran, while a publish sent the same way answers 503.
 */
import { createServer, type IncomingMessage, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { NotificationServer } from '../../src/server/index.js'
import { API_KEY, SECRET } from '../helpers/server.js'

let http: Server | undefined
let belfry: NotificationServer | undefined
afterEach(async () => {
  await belfry?.close()
  http?.closeAllConnections()
  await new Promise((resolve) => http?.close(resolve))
  http = undefined
  belfry = undefined
})

/** An app's server that hands every request to belfry; `arrived` resolves as each request's headers reach it. */
async function appWithBelfry(): Promise<{ url: URL; arrived: () => Promise<IncomingMessage> }> {
  let waiting: ((req: IncomingMessage) => void) | undefined
  http = createServer((req, res) => {
    waiting?.(req)
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
  return {
    url: new URL(`http://127.0.0.1:${(http.address() as AddressInfo).port}`),
    arrived: () => new Promise((resolve) => (waiting = resolve)),
  }
}

/**
 * POSTs `body` to `path` in two parts: the headers and nothing, then (after `between`) the body. Resolves the
 * answer's status and JSON.
 */
async function postInTwoParts(
  app: Awaited<ReturnType<typeof appWithBelfry>>,
  path: string,
  body: unknown,
  between: () => Promise<void>,
): Promise<[number, unknown]> {
  const text = JSON.stringify(body)
  const arrived = app.arrived()
  const req = request(new URL(path, app.url), {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
  })
  const answer = new Promise<[number, unknown]>((resolve, reject) => {
    req.on('response', (res) => {
      let data = ''
      res.on('data', (d: Buffer) => (data += d.toString()))
      res.on('end', () => resolve([res.statusCode!, JSON.parse(data)]))
    })
    req.on('error', reject)
  })
  req.flushHeaders()
  await arrived
  await new Promise((resolve) => setTimeout(resolve, 100)) // belfry has checked the key and waits for the body
  await between()
  req.end(text)
  return answer
}

describe('an admin request whose body arrives after close(), on an app’s own server', () => {
  it('a publish sent that way answers 503 closing (the behaviour the admin routes are to match)', async () => {
    const app = await appWithBelfry()
    const answer = await postInTwoParts(app, '/api/notifications', { userId: 'ann', title: 'late', body: '' }, () => belfry!.close())
    expect(answer).toEqual([503, { error: 'closing', message: 'server is shutting down' }])
  })

  it('POST /api/admin/prune answers 503 closing, not 200 {"removed": 0} for a pass its closed pruner never ran', async () => {
    const app = await appWithBelfry()
    // Two for ann: maxPerUser 1 would remove one.
    for (const title of ['one', 'two']) await belfry!.sendToUser('ann', { title, body: '' })
    const answer = await postInTwoParts(app, '/api/admin/prune', { maxPerUser: 1 }, () => belfry!.close())
    expect(answer).toEqual([503, expect.objectContaining({ error: 'closing' })])
  })

  it('POST /api/admin/unsubscribe answers 503 closing, not a 500 from the closed store', async () => {
    const app = await appWithBelfry()
    const answer = await postInTwoParts(app, '/api/admin/unsubscribe', { userId: 'ann', topics: ['news'] }, () => belfry!.close())
    expect(answer).toEqual([503, expect.objectContaining({ error: 'closing' })])
  })
})
