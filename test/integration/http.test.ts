import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http'
import { type AddressInfo, connect } from 'node:net'
import { networkInterfaces, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { DEV_API_KEY, DEV_SECRET } from '../../src/server/config.js'
import { utf8 } from '../../src/server/http.js'
import { mintToken, NotificationServer, SqliteStore, verifyToken } from '../../src/server/index.js'
import { serveDemo } from '../../src/server/static.js'
import {
  API_KEY,
  authedClient,
  httpPublish,
  rawClient,
  SECRET,
  type startServer,
  type TestServer,
  trickledPost,
  useServer,
} from '../helpers/server.js'

const start = useServer()

interface Reply {
  status: number
  headers: Headers
  json: Record<string, unknown>
}

async function call(url: string, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(url, init)
  const text = await res.text()
  return { status: res.status, headers: res.headers, json: text === '' ? {} : JSON.parse(text) }
}

/** POSTs `body` to the publish API with the given headers (no Authorization unless given). */
function post(s: TestServer, body: string, headers: Record<string, string> = {}): Promise<Reply> {
  return call(`${s.url}/api/notifications`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body })
}

/** A request with headers fetch() will not send (Host, Sec-Fetch-Site). */
function devCall(
  s: TestServer,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: s.port, method, path, headers }, (res) => {
      let text = ''
      res.on('data', (d: Buffer) => {
        text += d.toString()
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, json: text === '' ? {} : JSON.parse(text) }))
    })
    req.on('error', reject)
    req.end()
  })
}

/** A non-loopback IPv4 address of this machine, if it has one. */
function externalAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address
  }
  return undefined
}

/** A GET to `host` (any address), with the headers given (a Host of our choosing included). */
function rawGet(host: string, port: number, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method: 'GET', headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        body += c
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

/** A dev-mode server on a fresh database that the test listens and closes itself. */
function devServer(): NotificationServer {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-dev-'))
  const server = new NotificationServer({
    secret: DEV_SECRET,
    apiKey: DEV_API_KEY,
    database: join(dir, 'b.db'),
    dev: true,
    logger: pino({ level: 'silent' }),
  })
  const close = server.close.bind(server)
  server.close = async () => {
    await close()
    rmSync(dir, { recursive: true, force: true })
  }
  return server
}

const bearer = { authorization: `Bearer ${API_KEY}` }
const valid = { userId: 'alice', title: 'Hello', body: 'World' }

/**
 * POSTs raw chunks with node:http, so the test controls framing: a declared
 * content-length, or chunked transfer encoding when none is declared. Settles on
 * the response; a reset after it (the server closes on 413) is ignored.
 */
function rawPost(
  s: TestServer,
  chunks: (string | Buffer)[],
  headers: Record<string, string | number>,
): Promise<{ status: number; json: Record<string, unknown>; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    let answered = false
    const req = request(
      { host: '127.0.0.1', port: s.port, path: '/api/notifications', method: 'POST', headers: { ...bearer, ...headers } },
      (res) => {
        answered = true
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          text += chunk
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text), connection: res.headers.connection }))
        res.on('error', reject)
      },
    )
    req.on('error', (error) => {
      if (!answered) reject(error)
    })
    for (const chunk of chunks) req.write(chunk)
    req.end()
  })
}

/**
 * Writes a request's `head` on a raw socket, then a byte of body every 100 ms,
 * never the whole of it, for up to `waitMs`: the answer, and when (ms after
 * the head) the server closed the connection, if it did.
 */
async function trickle(port: number, head: string, waitMs: number): Promise<{ answer: string; cutAfter: number | undefined }> {
  const socket = connect(port, '127.0.0.1')
  let answer = ''
  socket.on('data', (d: Buffer) => {
    answer += d.toString()
  })
  socket.on('error', () => {})
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(performance.now())))
  const t0 = performance.now()
  socket.write(head)
  const bytes = setInterval(() => socket.write(' '), 100)
  const cut = await Promise.race([closed, new Promise<undefined>((r) => setTimeout(r, waitMs))])
  clearInterval(bytes)
  socket.destroy()
  return { answer, cutAfter: cut === undefined ? undefined : cut - t0 }
}

describe('POST /api/notifications: accepted', () => {
  it("asks the store to gather its publish with the turn's others; the programmatic API does not", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-gather-'))
    const inner = new SqliteStore(join(dir, 'belfry.db'))
    const asked: unknown[] = []
    const store = new Proxy(inner, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target)
        if (prop !== 'publish') return typeof value === 'function' ? value.bind(target) : value
        return (...args: Parameters<SqliteStore['publish']>) => {
          asked.push(args[3])
          return target.publish(...args)
        }
      },
    })
    try {
      const s = await start({ store })
      expect((await httpPublish(s.url, valid)).status).toBe(201)
      await s.server.sendToUser('alice', { title: 'programmatic', body: '' })
      expect(asked).toEqual([{ gather: true }, undefined])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('201 for userId, with the ids once durable, and delivers', async () => {
    const s = await start()
    const alice = await authedClient(s, 'alice')
    const res = await httpPublish(s.url, { ...valid, priority: 'high', data: { url: '/inbox' } })
    expect(res.status).toBe(201)
    expect(res.json).toEqual({ ids: [expect.any(String)], recipients: 1 })
    const ids = res.json.ids as string[]
    expect(await alice.next((f) => f.type === 'notification')).toMatchObject({
      id: ids[0],
      seq: 1,
      title: 'Hello',
      body: 'World',
      priority: 'high',
      data: { url: '/inbox' },
      read: false,
    })
    alice.close()
  })

  it('201 for userIds, counting duplicates once', async () => {
    const s = await start()
    const res = await httpPublish(s.url, { userIds: ['a', 'b', 'a', 'c', 'b'], title: 'Team', body: '' })
    expect(res.status).toBe(201)
    expect(res.json).toEqual({ ids: [expect.any(String)], recipients: 3 })
    // One inbox entry each: a's first notification has seq 1, with no duplicate after it.
    const a = await authedClient(s, 'a')
    expect(a.of('notification').map((f) => f.seq)).toEqual([1])
    a.close()
  })

  it('201 for a topic, reaching its subscribers only', async () => {
    const s = await start()
    const sub = await authedClient(s, 'sub')
    const other = await authedClient(s, 'other')
    sub.send({ type: 'subscribe', topic: 'news', requestId: 's' })
    await sub.next((f) => f.type === 'subscribed' && f.requestId === 's')
    const res = await httpPublish(s.url, { topic: 'news', title: 'Extra', body: '' })
    expect(res.status).toBe(201)
    expect(res.json).toEqual({ ids: [expect.any(String)], recipients: 1 })
    expect(await sub.next((f) => f.type === 'notification')).toMatchObject({ topic: 'news', title: 'Extra' })
    // Nobody subscribed: still 201, with no recipients.
    expect((await httpPublish(s.url, { topic: 'empty', title: 'Void', body: '' })).json).toMatchObject({ recipients: 0 })
    // A later notification of other's own: a socket's frames arrive in order, so once it is here,
    // anything of the topic publishes that had gone to other would be here before it.
    await httpPublish(s.url, { userId: 'other', title: 'Marker', body: '' })
    await other.next((f) => f.type === 'notification' && f.title === 'Marker')
    expect(other.of('notification').map((f) => f.title)).toEqual(['Marker'])
    sub.close()
    other.close()
  })

  it('201 for broadcast, reaching every known user', async () => {
    const s = await start()
    await httpPublish(s.url, { userIds: ['a', 'b'], title: 'Setup', body: '' })
    const live = await authedClient(s, 'c')
    const res = await httpPublish(s.url, { broadcast: true, title: 'Everyone', body: '' })
    expect(res.status).toBe(201)
    expect(res.json).toEqual({ ids: [expect.any(String)], recipients: 3 })
    expect(await live.next((f) => f.type === 'notification')).toMatchObject({ title: 'Everyone', id: (res.json.ids as string[])[0] })
    live.close()
  })
})

describe('POST /api/notifications: refused', () => {
  it('401 without the bearer key, before looking at the body', async () => {
    const s = await start()
    const body = JSON.stringify(valid)
    const cases: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong-key-123' },
      { authorization: `Bearer ${API_KEY}x` },
      { authorization: `Basic ${Buffer.from(`user:${API_KEY}`).toString('base64')}` },
      { authorization: `Token ${API_KEY}` },
      { authorization: API_KEY },
      { authorization: 'Bearer ' },
    ]
    for (const headers of cases) {
      const res = await post(s, body, headers)
      expect(res.status, JSON.stringify(headers)).toBe(401)
      expect(res.json).toMatchObject({ error: 'unauthorized', message: expect.stringMatching(/Bearer/) })
      expect(res.headers.get('www-authenticate')).toBe('Bearer')
    }
    expect((await post(s, 'not json')).status).toBe(401)
    // Nothing was published.
    const alice = await authedClient(s, 'alice')
    expect(alice.of('auth_success')[0]).toMatchObject({ seq: 0 })
    alice.close()
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    expect((await post(s, body, { authorization: `bearer ${API_KEY}` })).status).toBe(201)
  })

  it('401 for every request when the server has no API key', async () => {
    // Spread over the helper's default key; exactOptionalPropertyTypes forbids a plain undefined here.
    const s = await start({ apiKey: undefined } as unknown as Parameters<typeof startServer>[0])
    expect((await post(s, JSON.stringify(valid), bearer)).status).toBe(401)
    expect((await post(s, JSON.stringify(valid), { authorization: 'Bearer undefined' })).status).toBe(401)
  })

  it('400 with a reason that names the problem', async () => {
    const s = await start()
    const long = 'x'.repeat(257)
    const cases: [name: string, body: string, reason: RegExp][] = [
      ['invalid JSON', '{"userId": "alice",', /JSON/],
      ['empty body', '', /JSON/],
      ['non-object body', '"hello"', /object/],
      ['null body', 'null', /object/],
      ['array body', JSON.stringify([valid]), /object/],
      ['missing title', JSON.stringify({ userId: 'alice', body: '' }), /"title"/],
      ['empty title', JSON.stringify({ ...valid, title: '' }), /"title"/],
      ['title too long', JSON.stringify({ ...valid, title: long }), /"title"/],
      ['body not a string', JSON.stringify({ ...valid, body: 5 }), /"body"/],
      ['missing body', JSON.stringify({ userId: 'alice', title: 'x' }), /"body"/],
      ['bad priority', JSON.stringify({ ...valid, priority: 'urgent' }), /"priority"/],
      ['data an array', JSON.stringify({ ...valid, data: [1, 2] }), /"data"/],
      ['data a string', JSON.stringify({ ...valid, data: 'x' }), /"data"/],
      ['two audiences', JSON.stringify({ ...valid, topic: 'news' }), /exactly one/],
      ['no audience', JSON.stringify({ title: 'x', body: '' }), /exactly one/],
      ['empty userIds', JSON.stringify({ userIds: [], title: 'x', body: '' }), /"userIds"/],
      ['userIds with a non-string', JSON.stringify({ userIds: ['a', 5], title: 'x', body: '' }), /"userIds"/],
      ['userId too long', JSON.stringify({ ...valid, userId: 'u'.repeat(65) }), /"userId"/],
      ['broadcast not true', JSON.stringify({ broadcast: 'yes', title: 'x', body: '' }), /"broadcast"/],
      ['empty topic', JSON.stringify({ topic: '', title: 'x', body: '' }), /"topic"/],
      ['unknown field', JSON.stringify({ ...valid, colour: 'red' }), /unknown field "colour"/],
      // JSON can spell a lone surrogate; stored as UTF-8 it would come back changed.
      ['lone surrogate in title', '{"userId": "alice", "title": "a\\ud800b", "body": ""}', /well-formed/],
      ['lone surrogate in userId', '{"userId": "\\udc00", "title": "x", "body": ""}', /"userId"/],
      // PostgreSQL's text has no U+0000: refused for every store alike.
      ['U+0000 in title', '{"userId": "alice", "title": "a\\u0000b", "body": ""}', /U\+0000/],
      ['U+0000 in body', '{"userId": "alice", "title": "x", "body": "\\u0000"}', /U\+0000/],
      // JSON.parse reads 1e400 as Infinity, which JSON.stringify would store as null.
      ['a number out of range in data', '{"userId": "alice", "title": "x", "body": "", "data": {"n": 1e400}}', /finite numbers/],
      // 2^53 + 1 and a 19-digit int64 id: a double holds neither, JSON.parse reads them rounded.
      [
        'an integer past 2^53 in data',
        '{"userId": "alice", "title": "x", "body": "", "data": {"orderId": 9007199254740993}}',
        /2\^53 − 1.*as a string/,
      ],
      [
        'an int64 id in data',
        '{"userId": "alice", "title": "x", "body": "", "data": {"a": [{"id": -1234567890123456789}]}}',
        /±9007199254740991/,
      ],
      ['U+0000 in topic', '{"topic": "news\\u0000", "title": "x", "body": ""}', /"topic".*U\+0000/],
      // Regression: below the least double, JSON.parse reads them as 0, and they were stored so.
      [
        'a number that underflows in data',
        '{"userId": "alice", "title": "x", "body": "", "data": {"tolerance": 1e-400}}',
        /1e-400 is too small/,
      ],
      [
        'a fraction that underflows in data',
        `{"userId": "alice", "title": "x", "body": "", "data": {"n": [-0.${'0'.repeat(400)}1]}}`,
        /too small/,
      ],
      // Its smallness split between the fraction's zeros and a two-digit exponent (the first check missed it).
      [
        'a number that underflows in parts in data',
        `{"userId": "alice", "title": "x", "body": "", "data": {"n": 0.${'0'.repeat(299)}1e-30}}`,
        /too small/,
      ],
    ]
    for (const [name, body, reason] of cases) {
      const res = await post(s, body, bearer)
      expect(res.status, name).toBe(400)
      expect(res.json, name).toEqual({ error: 'bad_request', message: expect.stringMatching(reason) })
      expect(res.headers.get('content-type'), name).toMatch(/^application\/json/)
    }
    // Title of exactly the maximum length is fine; so are zeros, the least double, and digits in text.
    expect((await post(s, JSON.stringify({ ...valid, title: long.slice(1) }), bearer)).status).toBe(201)
    const fine = '{"userId": "alice", "title": "1e-400", "body": "0.5e-323", "data": {"a": 0e-999, "b": -0.0, "c": 5e-324, "d": "1e-400"}}'
    expect((await post(s, fine, bearer)).status).toBe(201)
  })

  it('413 for a body over 64 KiB, with content-length and chunked', async () => {
    const s = await start()
    const big = JSON.stringify({ ...valid, body: 'x'.repeat(64 * 1024) })
    const declared = await rawPost(s, [big], { 'content-type': 'application/json', 'content-length': Buffer.byteLength(big) })
    expect(declared.status).toBe(413)
    expect(declared.json).toMatchObject({ error: 'payload_too_large', message: expect.stringMatching(/65536/) })

    const half = Math.ceil(big.length / 2)
    const chunked = await rawPost(s, [big.slice(0, half), big.slice(half)], { 'content-type': 'application/json' })
    expect(chunked.status).toBe(413)
    expect(chunked.json).toMatchObject({ error: 'payload_too_large' })

    // The same through fetch, and the server still takes a normal publish afterwards.
    expect((await post(s, big, bearer)).status).toBe(413)
    expect((await httpPublish(s.url, valid)).status).toBe(201)
  })

  it('400 for a body that is not valid UTF-8, rather than storing replacement characters', async () => {
    const s = await start()
    const bytes = Buffer.concat([Buffer.from('{"userId": "alice", "title": "a'), Buffer.from([0xff, 0xfe]), Buffer.from('b", "body": ""}')])
    const res = await rawPost(s, [bytes], { 'content-type': 'application/json', 'content-length': bytes.length })
    expect(res.status).toBe(400)
    expect(res.json).toEqual({ error: 'bad_request', message: 'the body is not valid UTF-8' })
    expect(await s.server.sendToUser('alice', { title: 'after', body: '' })).toMatchObject({ recipients: 1 })
  })

  it('415 for a body that is not declared JSON', async () => {
    const s = await start()
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/jsonp', '']) {
      const res = await call(`${s.url}/api/notifications`, {
        method: 'POST',
        headers: { ...bearer, ...(type && { 'content-type': type }) },
        body: JSON.stringify(valid),
      })
      expect(res.status, type).toBe(415)
      expect(res.json, type).toMatchObject({ error: 'unsupported_media_type' })
    }
    for (const type of ['application/json; charset=utf-8', 'application/json;charset="UTF-8"', 'application/json; charset=utf8']) {
      const withCharset = await post(s, JSON.stringify(valid), { ...bearer, 'content-type': type })
      expect(withCharset.status, type).toBe(201)
    }
  })

  // Regression: a body declared in another charset was read as UTF-8, and stored as other text than the publisher's
  // ("Ã©" written in ISO-8859-1, bytes C3 A9, became "é").
  it('415 for a body declared in a charset other than UTF-8, nothing stored', async () => {
    const s = await start()
    const alice = await authedClient(s, 'alice')
    const json = (title: string) => `{"userId":"alice","title":"${title}","body":""}`
    // Each in the charset it declares: "Ã©" (valid UTF-8 bytes), "café" (E9: no valid UTF-8; it was a 400 once the
    // first check moved after the body), ASCII JSON in UTF-16 (U+0000 between its characters: a 400 "not JSON").
    const bodies: [string, Buffer][] = [
      ['application/json; charset=iso-8859-1', Buffer.from(json('Ã©'), 'latin1')],
      ['application/json; charset=ISO-8859-1', Buffer.from(json('café'), 'latin1')],
      ['application/json; charset=utf-16le', Buffer.from(json('t'), 'utf16le')],
      ['application/json; charset=', Buffer.from(json('t'))],
      // A quoted parameter's own "charset=" is none: the charset parameter after it is.
      ['application/json; profile="x; charset=utf-8"; charset=iso-8859-1', Buffer.from(json('Ã©'), 'latin1')],
    ]
    for (const [type, bytes] of bodies) {
      const res = await rawPost(s, [bytes], { ...bearer, 'content-type': type, 'content-length': bytes.length })
      expect(res.status, type).toBe(415)
      expect(res.json, type).toMatchObject({ error: 'unsupported_media_type' })
    }
    // US-ASCII is a part of UTF-8; a "charset=" inside another parameter's quoted value is no charset parameter.
    for (const type of ['application/json; charset=us-ascii', 'application/json; profile="x; charset=iso-8859-1"']) {
      const res = await rawPost(s, [Buffer.from(json('ok'))], { ...bearer, 'content-type': type, 'content-length': json('ok').length })
      expect(res.status, type).toBe(201)
    }
    await s.server.sendToUser('alice', { title: 'after', body: '' })
    await expect.poll(() => alice.frames.filter((f) => f.type === 'notification').map((f) => f.title)).toEqual(['ok', 'ok', 'after'])
  })

  // Regression: a parameter that did not parse ("a b=", an empty name) set the scan going again inside its quoted
  // value, whose "charset=utf-8" hid the header's real charset=iso-8859-1.
  it.each([
    ['application/json;charset=UTF-8', true],
    ['application/json; charset = "utf-8"; p="a\\"b";', true],
    ['application/json; profile="x; charset=iso-8859-1"', true],
    ['application/json; a b="x; charset=utf-8"; charset=iso-8859-1', false],
    ['application/json; ="x; charset=utf-8"; charset=iso-8859-1', false],
    ['application/json; p=x"; charset=utf-8"; charset=iso-8859-1', false],
    ['application/json; charset=utf-8; charset=iso-8859-1', false],
    ['application/json; charset="utf-8', false],
  ])('reads the charset of %s as UTF-8: %s', (type, expected) => {
    expect(utf8(type)).toBe(expected)
  })

  it('400 for data nested deeper than 32 levels (not a 500 from a stack overflow)', async () => {
    const s = await start()
    const deep = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`
    for (const depth of [33, 4111, 20_000]) {
      const res = await post(s, `{"userId":"alice","title":"t","body":"","data":${deep(depth)}}`, bearer)
      expect(res.status, String(depth)).toBe(depth > 12_000 ? 413 : 400)
      if (res.status === 400) expect(res.json.message).toMatch(/"data" must nest at most 32 levels deep/)
    }
    expect((await post(s, `{"userId":"alice","title":"t","body":"","data":${deep(32)}}`, bearer)).status).toBe(201)
  })

  it('408 for a body that does not arrive in time, instead of holding the request open', async () => {
    const s = await start({ limits: { bodyTimeoutMs: 300 } })
    const res = await trickledPost(s.port, '/api/notifications', bearer, '{"userId":')
    expect(res).toEqual({ status: 408, json: { error: 'request_timeout', message: 'the body must arrive within 300 ms' } })
  })

  it('takes a client that goes away mid-body as no error: nothing stored, nothing logged as a failure, the next publish served', async () => {
    const lines: { level: number; msg: string }[] = []
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) })
    const s = await start({ logger })
    const req = request({
      host: '127.0.0.1',
      port: s.port,
      path: '/api/notifications',
      method: 'POST',
      headers: { ...bearer, 'content-type': 'application/json', 'content-length': 1000 },
    })
    req.on('error', () => {}) // the reset this test makes
    req.write('{"userId":"alice","title":')
    await new Promise((r) => setTimeout(r, 50))
    req.destroy()
    await new Promise((r) => setTimeout(r, 200))
    expect((await post(s, JSON.stringify(valid), bearer)).status).toBe(201)
    expect((await call(`${s.url}/api/admin/users/alice`, { headers: bearer })).json).toMatchObject({ latestSeq: 1 })
    expect(lines.filter((l) => l.level >= 40)).toEqual([])
  })

  it.each([
    ['refused for its key (401)', '/api/notifications', ''],
    ['to no route (404)', '/api/nothing', `Authorization: Bearer ${API_KEY}\r\n`],
    ['to a path not ours (404)', '/elsewhere', ''],
  ])("gives a body that trickles after the answer, %s, bodyTimeoutMs, not Node's 300 s", async (_, path, headers) => {
    const s = await start({ limits: { bodyTimeoutMs: 300 } })
    const { answer, cutAfter } = await trickle(
      s.port,
      `POST ${path} HTTP/1.1\r\nHost: x\r\n${headers}Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`,
      5000,
    )
    expect(answer).toMatch(/^HTTP\/1.1 40[14]/)
    expect(cutAfter, 'the server closed the connection').toBeDefined()
    expect(cutAfter!).toBeGreaterThanOrEqual(250)
  })

  // Regression: a request handed to `fallback` (belfry-server always passes one) got no bodyTimeoutMs bound.
  it.each([
    ['a bare 404 (the CLI without --dev)', (_req: IncomingMessage, res: ServerResponse) => void res.writeHead(404).end()],
    ['the demo page server (the CLI with --dev)', serveDemo(tmpdir())],
  ])(
    "gives a body that trickles to a path left to the fallback, %s, bodyTimeoutMs after the answer, not Node's 300 s",
    async (_, fallback) => {
      const s = await start({ fallback, limits: { bodyTimeoutMs: 300 } })
      const { answer, cutAfter } = await trickle(s.port, 'POST /elsewhere HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{', 3000)
      expect(answer).toMatch(/^HTTP\/1.1 40[45]/)
      expect(cutAfter, 'the server closed the connection within 3 s').toBeDefined()
      expect(cutAfter!).toBeGreaterThanOrEqual(250)
    },
  )

  it('405 with an allow header for other methods', async () => {
    const s = await start()
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
      const res = await call(`${s.url}/api/notifications`, { method, headers: bearer })
      expect(res.status, method).toBe(405)
      expect(res.headers.get('allow')).toBe('POST')
      expect(res.json).toMatchObject({ error: 'method_not_allowed' })
    }
    const health = await call(`${s.url}/healthz`, { method: 'POST' })
    expect(health.status).toBe(405)
    expect(health.headers.get('allow')).toBe('GET, HEAD')
  })

  it.each(['/healthz', '/metrics', '/api/admin/users?id=ann'])('%s serves HEAD, and its 405 lists HEAD in Allow', async (path) => {
    const s = await start({ metrics: { token: 'metrics-token-123' } })
    const authorization = `Bearer ${path === '/metrics' ? 'metrics-token-123' : API_KEY}`
    const head = await fetch(`${s.url}${path}`, { method: 'HEAD', headers: { authorization } })
    expect(head.status).not.toBe(405)
    const put = await fetch(`${s.url}${path}`, { method: 'PUT', headers: { authorization } })
    expect(put.status).toBe(405)
    expect(put.headers.get('allow')).toBe('GET, HEAD')
  })
})

describe('other routes', () => {
  it('GET /healthz is 200 {status: "ok"}, with the counts only for the API key', async () => {
    const s = await start()
    const alice = await authedClient(s, 'alice')
    const res = await call(`${s.url}/healthz`)
    expect(res.status).toBe(200)
    expect(res.json).toEqual({ status: 'ok' })
    expect(res.headers.get('cache-control')).toBe('no-store')
    const wrongKey = await call(`${s.url}/healthz`, { headers: { authorization: 'Bearer not-the-key' } })
    expect(wrongKey.json).toEqual({ status: 'ok' })
    const operator = await call(`${s.url}/healthz`, { headers: bearer })
    expect(operator.json).toEqual({ status: 'ok', users: 1, connections: 1 })
    alice.close()
  })

  // Regression: JSON answers had no X-Content-Type-Options, so a browser could sniff one into another type.
  it('JSON answers of the API carry X-Content-Type-Options: nosniff', async () => {
    const s = await start()
    for (const path of ['/healthz', '/api/nope', '/nope']) {
      const res = await fetch(`${s.url}${path}`)
      expect(res.headers.get('content-type'), path).toMatch(/^application\/json/)
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff')
    }
  })

  it('404 JSON for unknown /api/ paths and other paths', async () => {
    const s = await start()
    for (const path of ['/api/nope', '/api/notifications/1', '/api/', '/api/dev/token?user=ann', '/nope']) {
      const res = await call(`${s.url}${path}`)
      expect(res.status, path).toBe(404)
      expect(res.headers.get('content-type'), path).toMatch(/^application\/json/)
      expect(res.json, path).toMatchObject({ error: 'not_found', message: expect.any(String) })
    }
  })

  it('a request target that is no URL (`//`, `http://[`) is a 404, not a 500', async () => {
    const s = await start()
    for (const path of ['//', 'http://[']) {
      const status = await new Promise<number>((resolve, reject) => {
        request({ host: '127.0.0.1', port: s.port, path, method: 'GET' }, (res) => {
          res.resume()
          resolve(res.statusCode ?? 0)
        })
          .on('error', reject)
          .end()
      })
      expect(status, path).toBe(404)
    }
  })

  it('serves a request that asks to upgrade to another protocol (curl --http2 sends Upgrade: h2c) as HTTP/1.1', async () => {
    // It got a bare 404 on every route (Node hands it to the upgrade listener, not to the request handler).
    const s = await start()
    const ann = await authedClient(s, 'ann')
    const h2c = { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAAQCAAAAAAIAAAAA' }
    const body = JSON.stringify({ userId: 'ann', title: 'over h2c', body: '' })
    const published = await rawPost(s, [body], { ...h2c, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    expect(published.status).toBe(201)
    expect(await ann.next((f) => f.type === 'notification')).toMatchObject({ title: 'over h2c' })
    const health = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      request({ host: '127.0.0.1', port: s.port, path: '/healthz', headers: h2c }, (res) => {
        let text = ''
        res.on('data', (chunk: Buffer) => {
          text += chunk
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
      })
        .on('error', reject)
        .end()
    })
    expect(health.status).toBe(200)
    expect(JSON.parse(health.body)).toMatchObject({ status: 'ok' })
  })

  it('after close() the publish API and WebSocket upgrades are refused', async () => {
    const s = await start()
    await s.server.close()
    await expect(fetch(`${s.url}/api/notifications`, { method: 'POST', headers: bearer, body: JSON.stringify(valid) })).rejects.toThrow()
    await expect(rawClient(s.wsUrl)).rejects.toThrow()
    await expect(s.server.sendToUser('alice', { title: valid.title, body: valid.body })).rejects.toThrow(/closed/)
  })
})

describe('dev token route', () => {
  it('mints a token that authenticates as the user (dev mode only)', async () => {
    const s = await start({ dev: true })
    const res = await call(`${s.url}/api/dev/token?user=ann`)
    expect(res.status).toBe(200)
    expect(res.json).toEqual({ token: expect.any(String), userId: 'ann', apiKey: DEV_API_KEY })
    const c = await rawClient(s.wsUrl)
    c.send({ type: 'auth', token: res.json.token })
    expect(await c.next((f) => f.type === 'auth_success')).toMatchObject({ userId: 'ann' })
    c.close()
    for (const query of ['', '?user=', `?user=${'u'.repeat(65)}`, '?user=ann&ttl=0', '?user=ann&ttl=abc', '?user=ann&ttl=86401']) {
      const bad = await call(`${s.url}/api/dev/token${query}`)
      expect(bad.status, query).toBe(400)
      expect(bad.json, query).toMatchObject({ error: 'bad_request' })
    }
  })

  it('drop cuts every socket of the user (dev mode only), and the user can connect again', async () => {
    const s = await start({ dev: true })
    const a = await authedClient(s, 'ann')
    const b = await authedClient(s, 'ann')
    const other = await authedClient(s, 'bob')
    const res = await fetch(`${s.url}/api/dev/drop?user=ann`, { method: 'POST' })
    expect(await res.json()).toEqual({ dropped: 2 })
    expect((await a.closed).code).toBe(1006)
    expect((await b.closed).code).toBe(1006)
    expect(other.ws.readyState).toBe(other.ws.OPEN)
    expect((await fetch(`${s.url}/api/dev/drop?user=ann`)).status).toBe(405)
    const again = await authedClient(s, 'ann')
    expect(again.of('auth_success')).toHaveLength(1)
    for (const c of [other, again]) c.close()
  })

  it("topics lists the user's subscriptions as the store has them (dev mode only)", async () => {
    const s = await start({ dev: true })
    const ann = await authedClient(s, 'ann')
    ann.send({ type: 'subscribe', topics: ['deploys', 'builds'], requestId: 's' })
    await ann.next((f) => f.requestId === 's')
    expect((await call(`${s.url}/api/dev/topics?user=ann`)).json).toEqual({
      userId: 'ann',
      topics: expect.arrayContaining(['deploys', 'builds']),
    })
    expect((await call(`${s.url}/api/dev/topics?user=bob`)).json).toEqual({ userId: 'bob', topics: [] })
    expect((await call(`${s.url}/api/dev/topics?user=`)).status).toBe(400)
    expect((await devCall(s, 'POST', '/api/dev/topics?user=ann')).status).toBe(405)
    ann.close()
  })

  it('answers each dev route on its own method only', async () => {
    const s = await start({ dev: true })
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const res = await devCall(s, method, '/api/dev/token?user=ann')
      expect(res.status, method).toBe(405)
      expect(res.headers.allow, method).toBe('GET')
    }
    expect((await devCall(s, 'GET', '/api/dev/drop?user=ann')).status).toBe(405)
  })

  it('answers only on a loopback Host (no DNS rebinding) and refuses pages of other origins', async () => {
    const s = await start({ dev: true })
    const host = `127.0.0.1:${s.port}`
    const refused: [string, Record<string, string>][] = [
      ['a rebinding Host', { host: `evil.example:${s.port}` }],
      ['a LAN address', { host: `192.168.1.20:${s.port}` }],
      ['another origin', { host, origin: 'http://evil.example' }],
      ['another port', { host, origin: `http://127.0.0.1:${s.port + 1}` }],
      ['a sandboxed page', { host, origin: 'null' }],
      ['a cross-site fetch', { host, 'sec-fetch-site': 'cross-site' }],
      ['a same-site fetch', { host, 'sec-fetch-site': 'same-site' }],
    ]
    for (const [what, headers] of refused) {
      for (const [method, path] of [
        ['GET', '/api/dev/token?user=victim'],
        ['POST', '/api/dev/drop?user=victim'],
        ['GET', '/api/dev/topics?user=victim'],
      ] as const) {
        const res = await devCall(s, method, path, headers)
        expect(res.status, `${what}: ${method} ${path}`).toBe(403)
        expect(res.json, what).toMatchObject({ error: 'forbidden' })
        expect(JSON.stringify(res.json), what).not.toContain(DEV_API_KEY)
      }
    }
    const allowed: [string, Record<string, string>][] = [
      ['no Origin (curl, a proxy)', { host }],
      ['localhost', { host: `localhost:${s.port}` }],
      ['[::1]', { host: `[::1]:${s.port}` }],
      ['the page itself', { host, origin: `http://${host}`, 'sec-fetch-site': 'same-origin' }],
      ['typed into the address bar', { host, 'sec-fetch-site': 'none' }],
    ]
    for (const [what, headers] of allowed) {
      expect((await devCall(s, 'GET', '/api/dev/token?user=ann', headers)).status, what).toBe(200)
    }
  })

  // Dev mode's secret is published: a page of another origin could sign its own token and read any user's inbox live.
  it('fences its WebSocket handshakes as its routes: a page of another origin gets a 403, the page itself gets in', async () => {
    const lines: { reason?: string; msg: string }[] = []
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line)) })
    const s = await start({ dev: true, logger })
    await s.server.sendToUser('alice', { title: 'private', body: 'for alice only' })
    const host = `127.0.0.1:${s.port}`
    for (const origin of ['https://evil.example', `http://127.0.0.1:${s.port + 1}`, 'null']) {
      const refused = await rawClient(s.wsUrl, { origin }).then(
        (c) => {
          c.close()
          return 'opened'
        },
        (error: Error) => error.message,
      )
      expect(refused, origin).toBe('Unexpected server response: 403')
    }
    // The page sees a bare 1006: the terminal says why, once for each reason (a page that retries logs no more).
    await rawClient(s.wsUrl, { origin: 'https://evil.example' }).catch(() => {})
    const told = lines.filter((l) => l.msg.startsWith('dev mode refused a WebSocket handshake'))
    expect(told.map((l) => l.reason)).toEqual([
      `dev routes refuse cross-origin requests (Origin "https://evil.example", Host "${host}")`,
      `dev routes refuse cross-origin requests (Origin "http://127.0.0.1:${s.port + 1}", Host "${host}")`,
      `dev routes refuse cross-origin requests (Origin "null", Host "${host}")`,
    ])
    expect(told[0]!.msg).toContain('Using it from another origin')
    const page = await rawClient(s.wsUrl, { origin: `http://${host}` })
    page.send({ type: 'auth', token: await mintToken(DEV_SECRET, 'alice'), since: 0 })
    expect(await page.next((f) => f.type === 'auth_success')).toBeDefined()
    page.close()
  })

  // Regression: the loopback check read only the Host header, which a peer off loopback writes itself.
  it('refuses a peer off loopback that merely claims "Host: localhost": the socket\'s address decides', async () => {
    const address = externalAddress()
    expect(address, 'this test needs a non-loopback interface').toBeDefined()
    const server = devServer()
    try {
      // Every interface, asked for explicitly.
      const { port } = await server.listen(0, '0.0.0.0')
      const res = await rawGet(address!, port, '/api/dev/token?user=victim', { host: `localhost:${port}` })
      expect(res.status, res.body).toBe(403)
      expect(res.body).not.toContain(DEV_API_KEY)
      expect((await rawGet('127.0.0.1', port, '/api/dev/token?user=ann', { host: `localhost:${port}` })).status).toBe(200)
    } finally {
      await server.close()
    }
  })

  // Regression: listen() without a host listened on every interface in dev mode (only the CLI chose loopback).
  it('listen() without a host listens on 127.0.0.1 in dev mode', async () => {
    const address = externalAddress()
    expect(address, 'this test needs a non-loopback interface').toBeDefined()
    const server = devServer()
    try {
      const { port } = await server.listen(0)
      expect((server.httpServer!.address() as AddressInfo).address).toBe('127.0.0.1')
      await expect(rawGet(address!, port, '/api/dev/token?user=victim', { host: `localhost:${port}` })).rejects.toThrow(/ECONNREFUSED/)
    } finally {
      await server.close()
    }
  })

  // Regression: the library's `dev: true` took any secret, so its dev routes minted tokens valid under a production secret.
  it('never mints, in dev mode, tokens that a production secret accepts: dev mode takes only the published dev secrets', async () => {
    const base = { database: ':memory:', dev: true, logger: pino({ level: 'silent' }) }
    const productionSecret = 'the-real-production-secret-0123'
    for (const [what, secrets] of [
      ['a production secret and key', { secret: productionSecret, apiKey: 'the-real-production-key' }],
      ['a production secret', { secret: productionSecret, apiKey: DEV_API_KEY }],
      ['a production key', { secret: DEV_SECRET, apiKey: 'the-real-production-key' }],
      ['no key', { secret: DEV_SECRET }],
    ] as const) {
      expect(() => new NotificationServer({ ...base, ...secrets }), what).toThrow(TypeError)
      expect(() => new NotificationServer({ ...base, ...secrets }), what).toThrow(
        new RegExp(`^options\\.dev is true: options\\.secret must be "${DEV_SECRET}" and options\\.apiKey "${DEV_API_KEY}"`),
      )
    }
    // The message never shows a secret it was given.
    let message = ''
    try {
      new NotificationServer({ ...base, secret: productionSecret, apiKey: 'the-real-production-key' })
    } catch (error) {
      message = (error as Error).message
    }
    expect(message).toMatch(/options\.secret is a string of 31 characters and options\.apiKey is a string of 23 characters$/)
    expect(message).not.toMatch(/the-real-production/)
    // On the dev secrets, what it mints is valid under them only.
    const server = devServer()
    try {
      const { port } = await server.listen(0, '127.0.0.1')
      const res = await rawGet('127.0.0.1', port, '/api/dev/token?user=victim', { host: `localhost:${port}` })
      const { token } = JSON.parse(res.body) as { token: string }
      expect(verifyToken(token, DEV_SECRET).ok).toBe(true)
      expect(verifyToken(token, productionSecret).ok).toBe(false)
    } finally {
      await server.close()
    }
  })

  // Regression: only belfry-server refused the dev secrets outside dev mode; a library server took them, and
  // then accepted every token any dev server mints.
  it('refuses the published dev secrets outside dev mode', () => {
    const base = { database: ':memory:', logger: pino({ level: 'silent' }) }
    for (const secrets of [
      { secret: DEV_SECRET, apiKey: 'the-real-production-key' },
      { secret: 'the-real-production-secret-0123', apiKey: DEV_API_KEY },
    ]) {
      expect(() => new NotificationServer({ ...base, ...secrets })).toThrow(
        new TypeError('options.secret and options.apiKey must not be the published dev secrets unless options.dev is true'),
      )
    }
  })

  it('is 404 without dev mode', async () => {
    const s = await start()
    for (const path of ['/api/dev/token?user=ann', '/api/dev/topics?user=ann']) {
      const res = await call(`${s.url}${path}`)
      expect(res.status, path).toBe(404)
      expect(res.json, path).toMatchObject({ error: 'not_found' })
    }
  })
})

describe('programmatic API', () => {
  it('publish methods reject a bad notification with a TypeError naming the field', async () => {
    const s = await start()
    const bad: [Promise<unknown>, RegExp][] = [
      [s.server.sendToUser('alice', { title: '', body: '' }), /"title"/],
      [s.server.sendToUser('alice', { title: 'x', body: 5 as unknown as string }), /"body"/],
      [s.server.sendToUser('alice', { title: 'x', body: '', priority: 'urgent' as 'high' }), /"priority"/],
      [s.server.sendToUser('alice', { title: 'x', body: '', data: [] as unknown as Record<string, never> }), /"data"/],
      [s.server.sendToUser('', valid), /"userId"/],
      [s.server.sendToUsers([], valid), /"userIds"/],
      [s.server.publish('', valid), /"topic"/],
    ]
    for (const [promise, field] of bad) {
      const error = await promise.then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(TypeError)
      expect((error as TypeError).message).toMatch(field)
    }
    // None of them was stored.
    const alice = await authedClient(s, 'alice')
    expect(alice.of('auth_success')[0]).toMatchObject({ seq: 0 })
    alice.close()
  })

  it('the constructor throws a TypeError naming a bad option', () => {
    const base = { secret: SECRET, database: ':memory:' }
    expect(() => new NotificationServer({ ...base, secret: 'short' })).toThrow(TypeError)
    expect(() => new NotificationServer({ ...base, secret: 'short' })).toThrow(/options\.secret/)
    expect(() => new NotificationServer({ ...base, apiKey: 'k' })).toThrow(/options\.apiKey/)
    expect(() => new NotificationServer({ ...base, limits: { bogusLimit: 1 } as never })).toThrow(TypeError)
    expect(() => new NotificationServer({ ...base, limits: { bogusLimit: 1 } as never })).toThrow(/bogusLimit/)
    expect(() => new NotificationServer({ ...base, limits: { maxFrameBytes: -1 } })).toThrow(/options\.limits\.maxFrameBytes/)
    expect(() => new NotificationServer({ ...base, limits: { heartbeatMs: 1.5 } })).toThrow(/options\.limits\.heartbeatMs/)
    // Beyond setTimeout's range a delay becomes 1 ms: every socket would be cut at once.
    expect(() => new NotificationServer({ ...base, limits: { heartbeatMs: 2 ** 31 } })).toThrow(
      /options\.limits\.heartbeatMs must be at most/,
    )
    expect(() => new NotificationServer({ ...base, limits: { authTimeoutMs: 2 ** 31 } })).toThrow(/options\.limits\.authTimeoutMs/)
    const bad: [option: string, value: unknown][] = [
      ['logger', {}],
      ['dev', 'yes'],
      ['limits', 5],
      ['fallback', 'x'],
      ['store', {}],
      ['broker', {}],
      ['server', {}],
    ]
    for (const [option, value] of bad) {
      expect(() => new NotificationServer({ ...base, [option]: value }), option).toThrow(TypeError)
      expect(() => new NotificationServer({ ...base, [option]: value }), option).toThrow(new RegExp(`^options\\.${option} `))
    }
  })
})

describe('attached to an app’s HTTP server', () => {
  /** An app server with a route of its own that asks belfry first, as the README shows. */
  async function appServer(): Promise<{ http: Server; port: number; attach: () => NotificationServer }> {
    let belfry: NotificationServer | undefined
    const http = createServer(async (req, res) => {
      if (belfry && (await belfry.handleRequest(req, res))) return
      res.writeHead(200, { 'content-type': 'text/plain' }).end('the app')
    })
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    const attach = () => {
      belfry = new NotificationServer({
        secret: SECRET,
        apiKey: API_KEY,
        database: ':memory:',
        server: http,
        logger: pino({ level: 'silent' }),
      })
      return belfry
    }
    return { http, port: (http.address() as AddressInfo).port, attach }
  }

  it('serves its routes and /ws, leaves the rest to the app, and hands the server back on close()', async () => {
    const { http, port, attach } = await appServer()
    try {
      const first = attach()
      expect((await call(`http://127.0.0.1:${port}/healthz`)).json).toMatchObject({ status: 'ok' })
      expect(await (await fetch(`http://127.0.0.1:${port}/somewhere`)).text()).toBe('the app')
      // Not a URL: not belfry's either; the app answers it.
      const odd = await new Promise<number>((resolve, reject) => {
        request({ host: '127.0.0.1', port, path: '//', method: 'GET' }, (res) => {
          res.resume()
          resolve(res.statusCode ?? 0)
        })
          .on('error', reject)
          .end()
      })
      expect(odd).toBe(200)
      const ws = await rawClient(`ws://127.0.0.1:${port}/ws`)
      ws.close()

      const listeners = http.listenerCount('upgrade')
      await first.close()
      expect(http.listening).toBe(true)
      expect(http.listenerCount('upgrade')).toBe(listeners - 1)
      // A new server on the same HTTP server takes the upgrades; the closed one no longer answers 503.
      const second = attach()
      const token = await mintToken(SECRET, 'ann')
      const c = await rawClient(`ws://127.0.0.1:${port}/ws`)
      c.send({ type: 'auth', token })
      expect(await c.next((f) => f.type === 'auth_success')).toMatchObject({ userId: 'ann' })
      c.close()
      await second.close()
    } finally {
      http.closeAllConnections()
      await new Promise((resolve) => http.close(resolve))
    }
  })
})

describe('keep-alive', () => {
  // A load balancer that reuses its connections to the server, with its idle timeout of 60 s (as README asks),
  // would send a request on a connection the server closes at Node's default 5 s, and answer it 502.
  it('keeps an idle keep-alive connection longer than a load balancer’s 60 s, and says so', async () => {
    const t = await start()
    const res = await new Promise<IncomingMessage>((resolve, reject) =>
      request(`${t.url}/healthz`, { headers: { connection: 'keep-alive' } }, resolve)
        .on('error', reject)
        .end(),
    )
    res.resume()
    expect(res.headers['keep-alive']).toBe('timeout=65')
  })
})
