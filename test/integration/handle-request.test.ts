import { createServer, type IncomingMessage, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { afterEach, describe, expect, it, onTestFinished } from 'vitest'
import { NotificationServer, SqliteStore } from '../../src/server/index.js'
import { API_KEY, SECRET } from '../helpers/server.js'

const body = JSON.stringify({ userId: 'alice', title: 't', body: '' })
const headers = { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' }

/**
 * An app's own HTTP server that does some work of its own (`before`: a session look-up, a body
 * parser) and then hands the request to belfry. Records what `handleRequest` resolved to.
 */
async function appServer(before: (req: IncomingMessage) => Promise<void>) {
  const handled: boolean[] = []
  let belfry!: NotificationServer
  const http = createServer(async (req, res) => {
    await before(req)
    const served = await belfry.handleRequest(req, res)
    handled.push(served)
    if (!served) res.end('the app')
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  belfry = new NotificationServer({
    secret: SECRET,
    apiKey: API_KEY,
    database: ':memory:',
    server: http,
    logger: pino({ level: 'silent' }),
    limits: { bodyTimeoutMs: 300 },
  })
  const dispose = async () => {
    await belfry.close()
    http.closeAllConnections()
    await new Promise((resolve) => http.close(resolve))
  }
  return { handled, port: (http.address() as AddressInfo).port, dispose }
}

describe("handleRequest() on an app's own server, handed a request late", () => {
  // Regression: the body is read by listening for 'end' or 'close'; a request that closed before belfry saw it emits neither again.
  it('settles handleRequest() for a publish whose client went away before the app handed it to belfry', async () => {
    let gone!: () => void
    const closed = new Promise<void>((resolve) => {
      gone = resolve
    })
    const app = await appServer((req) => new Promise<void>((resolve) => req.once('close', () => resolve(gone()))))
    try {
      const req = request({
        host: '127.0.0.1',
        port: app.port,
        path: '/api/notifications',
        method: 'POST',
        headers: { ...headers, 'content-length': 1000 },
      })
      req.on('error', () => {})
      req.write(body.slice(0, 10))
      await new Promise((resolve) => setTimeout(resolve, 50))
      req.destroy()
      await closed
      // bodyTimeoutMs is 300 ms: well past it, handleRequest() must have settled.
      await expect.poll(() => app.handled, { timeout: 2000 }).toEqual([true])
    } finally {
      await app.dispose()
    }
  })

  // Regression: a body parser (express.json(), …) read the body first: the stream ended before belfry listened for its end.
  it('settles handleRequest() at once for a publish whose body the app already read, rather than never', async () => {
    const app = await appServer(async (req) => {
      req.resume()
      await new Promise((resolve) => req.once('end', resolve))
    })
    try {
      const res = await fetch(`http://127.0.0.1:${app.port}/api/notifications`, { method: 'POST', headers, body })
      const status = res.status
      await res.text()
      // The body is gone (read by the app): refused, as read before. (It waited for an 'end' already
      // emitted: a 408 after bodyTimeoutMs, and handleRequest() never settled.)
      expect(status).toBe(400)
      await expect.poll(() => app.handled, { timeout: 2000 }).toEqual([true])
    } finally {
      await app.dispose()
    }
  })
})

describe("handleRequest() on an app's own server: the admin routes", () => {
  /**
   * An app's server that hands every request to belfry (404 for what it does not serve), with `readFirst` once
   * a body parser of its own has read the body; what handleRequest() rejected with.
   */
  async function appWithBelfry(options: { store?: SqliteStore; retention?: { maxPerUser: number }; readFirst?: true } = {}) {
    const rejected: unknown[] = []
    let belfry!: NotificationServer
    const http = createServer(async (req, res) => {
      if (options.readFirst) await new Promise((resolve) => req.resume().once('end', resolve))
      belfry.handleRequest(req, res).then(
        (served) => {
          if (!served) res.writeHead(404).end()
        },
        (error: unknown) => {
          rejected.push(error)
          res.destroy()
        },
      )
    })
    belfry = new NotificationServer({
      secret: SECRET,
      apiKey: API_KEY,
      ...(options.store ? { store: options.store } : { database: ':memory:' }),
      ...(options.retention && { retention: options.retention }),
      server: http,
      logger: pino({ level: 'silent' }),
    })
    await belfry.ready()
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    onTestFinished(async () => {
      await belfry.close()
      http.closeAllConnections()
      await new Promise((resolve) => http.close(resolve))
    })
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
    const call = (method: string, path: string, json?: unknown) =>
      fetch(`${url}${path}`, { method, headers, ...(json !== undefined && { body: JSON.stringify(json) }) })
    return { belfry, rejected, call }
  }

  // Regression: the body read by the app's parser was taken for none, and a prune without a body runs the configured
  // rule: 200 {"removed": 2} for a prune of what is older than 100 years.
  it('refuses a prune whose body the app read first (400), rather than run the configured rule in its place', async () => {
    const { belfry, call } = await appWithBelfry({ retention: { maxPerUser: 1 }, readFirst: true })
    for (const title of ['one', 'two', 'three']) await belfry.sendToUser('ann', { title, body: '' })
    const res = await call('POST', '/api/admin/prune', { days: 36500 })
    expect([res.status, await res.json()]).toEqual([
      400,
      {
        error: 'bad_request',
        message: 'the body was read before belfry got the request: hand it to handleRequest() before a body parser reads it',
      },
    ])
    const user = await call('GET', '/api/admin/users?id=ann')
    expect(await user.json()).toMatchObject({ latestSeq: 3, floor: 0 })
    // A prune with no body at all is still the configured rule's.
    const configured = await call('POST', '/api/admin/prune')
    expect([configured.status, await configured.json()]).toMatchObject([200, { removed: 2 }])
  })

  // Regression: a closed pruner's pass removes nothing, and the route answered 200 {"removed": 0} for it.
  it('answers a prune after close() 503 closing, as a publish, not 200 for a pass it never ran', async () => {
    const { belfry, call } = await appWithBelfry({ retention: { maxPerUser: 1 } })
    for (const title of ['one', 'two']) await belfry.sendToUser('ann', { title, body: '' })
    await belfry.close()
    const publish = await call('POST', '/api/notifications', { userId: 'ann', title: 'late', body: '' })
    expect([publish.status, await publish.json()]).toEqual([503, { error: 'closing', message: 'server is shutting down' }])
    for (const json of [undefined, { maxPerUser: 1 }]) {
      const res = await call('POST', '/api/admin/prune', json)
      expect([res.status, await res.json()], JSON.stringify(json)).toEqual([503, { error: 'closing', message: 'server is shutting down' }])
    }
  })

  // Regression: only belfry's own server turned a route's failure into a 500; handleRequest() rejected, the request
  // unanswered. A store's failure is a 503 with its words (the admin routes are behind the API key), as a publish's.
  const outage = () => Promise.reject(new Error('the database went away'))
  it.each([
    ['GET', '/api/admin/users?id=ann', undefined, (s: SqliteStore) => (s.user = outage)],
    ['POST', '/api/admin/unsubscribe', { userId: 'ann', topics: ['team-a'] }, (s: SqliteStore) => (s.unsubscribe = outage)],
    ['POST', '/api/admin/prune', { maxPerUser: 1 }, (s: SqliteStore) => (s.prune = outage)],
  ] as const)('answers %s %s whose store call fails 503, and handleRequest() does not reject', async (method, path, json, fail) => {
    const store = new SqliteStore(':memory:')
    const { belfry, rejected, call } = await appWithBelfry({ store })
    await belfry.sendToUser('ann', { title: 'one', body: '' })
    fail(store)
    const res = await call(method, path, json)
    expect(rejected).toEqual([])
    expect([res.status, res.headers.get('retry-after'), await res.json()]).toEqual([
      503,
      '5',
      { error: 'unavailable', message: 'the store failed: the database went away; retry later' },
    ])
  })
})

let http: Server | undefined
let belfry: NotificationServer | undefined
afterEach(async () => {
  await belfry?.close()
  http?.closeAllConnections()
  await new Promise((resolve) => (http ? http.close(resolve) : resolve(undefined)))
  http = undefined
  belfry = undefined
})

/** An app's server that hands every request to belfry; `arrived` resolves as each request's headers reach it. */
async function appTakingBodies(): Promise<{ url: URL; arrived: () => Promise<IncomingMessage> }> {
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
  app: Awaited<ReturnType<typeof appTakingBodies>>,
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

// Regression: the admin routes checked accepting() before the body only; close() on an app's own server does not
// wait for a request still arriving, and a prune then ran on the closed pruner (200 {removed: 0}).
describe('an admin request whose body arrives after close(), on an app’s own server', () => {
  it('a publish sent that way answers 503 closing (the behaviour the admin routes are to match)', async () => {
    const app = await appTakingBodies()
    const answer = await postInTwoParts(app, '/api/notifications', { userId: 'ann', title: 'late', body: '' }, () => belfry!.close())
    expect(answer).toEqual([503, { error: 'closing', message: 'server is shutting down' }])
  })

  it('POST /api/admin/prune answers 503 closing, not 200 {"removed": 0} for a pass its closed pruner never ran', async () => {
    const app = await appTakingBodies()
    // Two for ann: maxPerUser 1 would remove one.
    for (const title of ['one', 'two']) await belfry!.sendToUser('ann', { title, body: '' })
    const answer = await postInTwoParts(app, '/api/admin/prune', { maxPerUser: 1 }, () => belfry!.close())
    expect(answer).toEqual([503, expect.objectContaining({ error: 'closing' })])
  })

  it('POST /api/admin/unsubscribe answers 503 closing, not a 500 from the closed store', async () => {
    const app = await appTakingBodies()
    const answer = await postInTwoParts(app, '/api/admin/unsubscribe', { userId: 'ann', topics: ['news'] }, () => belfry!.close())
    expect(answer).toEqual([503, expect.objectContaining({ error: 'closing' })])
  })
})
