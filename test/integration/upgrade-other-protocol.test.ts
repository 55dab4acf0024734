/**
 * A request that asks to upgrade to a protocol other than WebSocket (`curl --http2` on an `http://` URL sends
 * `Upgrade: h2c`) is served as the HTTP/1.1 request it also is: put back into its socket without the upgrade
 * headers, and parsed afresh. Here the cases beyond a lone request (test/integration/http.test.ts): pipelined
 * behind a request not yet answered, and on an app's HTTPS server.
 */
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import { type AddressInfo, connect } from 'node:net'
import { connect as connectTls } from 'node:tls'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { NotificationServer } from '../../src/server/index.js'
import { API_KEY, exchange, SECRET, useServer } from '../helpers/server.js'

const start = useServer()

/** The status lines of the answers on one connection, in order. */
const statuses = (answer: string) => answer.match(/^HTTP\/1\.1 \d{3}/gm) ?? []

/** A self-signed P-256 certificate for localhost (valid to 2126); the client does not check it. */
const KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgbJrkN5RYE1d/OapN
tffSW/oL9xOlJ7/VjB3sGw+yeC6hRANCAASCxzRcn2YUYvOR7zkULp53wZDJRub6
Pc26rfy4gZ9NA2LY3XhKXeTguvvE7KmGacdFZ7DYGxvdstOmttN0VJjf
-----END PRIVATE KEY-----
`
const CERT = `-----BEGIN CERTIFICATE-----
MIIBfjCCASWgAwIBAgIUEtC+NqewZxkSyfRzRocvGXDmUHswCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwMzIyMDQzM1oYDzIxMjYxMTA5
MjIwNDMzWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAASCxzRcn2YUYvOR7zkULp53wZDJRub6Pc26rfy4gZ9NA2LY3XhKXeTg
uvvE7KmGacdFZ7DYGxvdstOmttN0VJjfo1MwUTAdBgNVHQ4EFgQUbu0p5Ww6gPrE
4bMQ9J3l3lwBW2AwHwYDVR0jBBgwFoAUbu0p5Ww6gPrE4bMQ9J3l3lwBW2AwDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiBdLCv6mNhkr9CDPKwTXi8h
5sm1KujorgQy7/6CkK4K/AIgJO7buskFNiL7TGeTnTq4cxDtaye4mdp7NQBIHDYN
Kt4=
-----END CERTIFICATE-----
`

describe("belfry attached to an app's HTTPS server", () => {
  let app: HttpsServer | undefined
  let belfry: NotificationServer | undefined
  afterEach(async () => {
    await belfry?.close()
    app?.closeAllConnections()
    await new Promise((resolve) => app?.close(resolve))
  })

  it('serves a request with Upgrade for another protocol as HTTP/1.1, as on a plain server', async () => {
    app = createHttpsServer({ key: KEY, cert: CERT }, (req, res) => {
      void belfry!.handleRequest(req, res).then((served) => {
        if (!served) res.writeHead(200, { 'content-type': 'text/plain' }).end('the app')
      })
    })
    belfry = new NotificationServer({
      secret: SECRET,
      apiKey: API_KEY,
      database: ':memory:',
      server: app as never, // an https.Server: what an app that terminates TLS itself passes
      logger: pino({ level: 'silent' }),
    })
    await belfry.ready()
    await new Promise<void>((resolve) => app!.listen(0, '127.0.0.1', resolve))
    const { port } = app.address() as AddressInfo
    const get = (headers: string) =>
      exchange(
        connectTls({ port, host: '127.0.0.1', rejectUnauthorized: false }),
        `GET /healthz HTTP/1.1\r\nHost: belfry\r\n${headers}Connection: close\r\n\r\n`,
        10_000,
      )
    // Without Upgrade: answered.
    expect(statuses((await get('')).answer)).toEqual(['HTTP/1.1 200'])
    // With an Upgrade to another protocol: the same answer. The socket is a TLSSocket, which the https.Server's
    // `connection` listener took for a new one and started TLS inside: no answer.
    const upgraded = await get('Connection: Upgrade\r\nUpgrade: example/1\r\n')
    expect({ statuses: statuses(upgraded.answer), closed: upgraded.closed }).toEqual({ statuses: ['HTTP/1.1 200'], closed: true })
  })
})

describe('pipelined behind a request not yet answered (its answer was never written; a publish committed unanswered)', () => {
  it('answers every pipelined request, in order: a publish sent behind another gets its 201', async () => {
    const s = await start()
    const body = JSON.stringify({ userId: 'ann', title: 'pipelined', body: '' })
    const publish = (extra: string) =>
      `POST /api/notifications HTTP/1.1\r\nHost: belfry\r\nAuthorization: Bearer ${API_KEY}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`
    // Two publishes pipelined on one connection (RFC 9112 §9.3.2: answered in order); the second, as curl --http2
    // or any h2c-capable client may send, asks to upgrade to h2c, and closes the connection after its answer.
    const { answer, closed } = await exchange(
      connect(s.port, '127.0.0.1'),
      publish('') + publish('Connection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n'),
      10_000,
    )
    // Both were committed: the second is the user's seq 2.
    const user = (await (await fetch(`${s.url}/api/admin/users/ann`, { headers: { authorization: `Bearer ${API_KEY}` } })).json()) as {
      latestSeq: number
    }
    expect(user.latestSeq).toBe(2)
    // Each publish gets its answer: a publisher left without one retries it, and the notification is sent twice.
    expect({ statuses: statuses(answer), closed }).toEqual({ statuses: ['HTTP/1.1 201', 'HTTP/1.1 201'], closed: true })
  })

  it('answers a pipelined health check with Upgrade: h2c behind a plain one', async () => {
    const s = await start()
    const h2c = 'Connection: Upgrade, close\r\nUpgrade: h2c\r\n'
    const { answer, closed } = await exchange(
      connect(s.port, '127.0.0.1'),
      `GET /healthz HTTP/1.1\r\nHost: belfry\r\n\r\nGET /healthz HTTP/1.1\r\nHost: belfry\r\n${h2c}\r\n`,
      10_000,
    )
    expect({ statuses: statuses(answer), closed }).toEqual({ statuses: ['HTTP/1.1 200', 'HTTP/1.1 200'], closed: true })
  })
})
