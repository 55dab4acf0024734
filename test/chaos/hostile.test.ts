/**
 * Hostile input against a server running in this process: 10,000 seeded
 * fuzzed frames over many short connections (within and beyond the rate
 * limit), then the published `ws` attack inputs — the Sec-WebSocket-Protocol
 * header of CVE-2021-32640 (ReDoS), an upgrade with 2,000 headers
 * (CVE-2024-37890), and endless 1-byte continuation fragments
 * (CVE-2026-62389). Afterwards the server must be up, serve a new client,
 * hold no leftover connections, and its heap must not have grown much.
 */
import { createHash, randomBytes } from 'node:crypto'
import { type Socket, connect as tcpConnect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import { CloseCode, ErrorCode } from '../../src/protocol/index.js'
import { authedClient, startServer, type TestServer } from '../helpers/server.js'
import { MB, type Rng, range, retainedHeap, rng, seedFor } from './util.js'

const FRAMES = 10_000
const LANES = 4
const HEAP_BOUND = 64 * MB
/** Close codes a fuzzing connection may meet: its own 1000, and the server's answers to abuse. */
const EXPECTED_CLOSES = new Set<number>([
  1000,
  CloseCode.TooLarge, // 1009: a frame over 64 KiB
  1007, // invalid UTF-8 in a text frame
  CloseCode.ProtocolViolation, // 4000: too many bad frames in a row
  CloseCode.TokenInvalid, // 4001: a junk token in an auth frame
  CloseCode.Forbidden, // 4003: an auth frame whose userId is not the token's
  CloseCode.RateLimited, // 4029: over the rate limit
])

let t: TestServer
let heapBefore = 0
beforeAll(async () => {
  t = await startServer()
  heapBefore = await retainedHeap()
})
afterAll(() => t.dispose())

// ---------------------------------------------------------------------------
// The fuzzer

interface Fuzz {
  kind: string
  data: string | Buffer
  binary: boolean
}

const WRONG_VALUES: unknown[] = [
  null,
  true,
  false,
  -1,
  0.5,
  1e308,
  -0,
  2 ** 53 + 1,
  '',
  'x',
  [],
  {},
  [1, [2, [3]]],
  { a: { b: {} } },
  '__proto__',
]
const FIELDS = ['type', 'seq', 'since', 'ids', 'all', 'topic', 'limit', 'before', 'requestId', 'token', 'userId']

function validFrame(r: Rng, token: string, user: string): Record<string, unknown> {
  const rid = () => (r.chance(0.5) ? { requestId: `r${r.int(0, 1e6)}` } : {})
  switch (r.int(0, 9)) {
    case 0:
      return { type: 'ping', ...rid() }
    case 1:
      return { type: 'ack', seq: r.pick([0, r.int(1, 1000), Number.MAX_SAFE_INTEGER]) }
    case 2:
      return {
        type: 'history',
        ...(r.chance(0.5) ? { before: r.int(0, 10_000) } : {}),
        ...(r.chance(0.5) ? { limit: r.int(1, 100) } : {}),
        ...rid(),
      }
    case 3:
      return { type: 'mark_read', ids: range(1, r.int(1, 20)).map((i) => `id-${i}-${r.int(0, 99)}`), ...rid() }
    case 4:
      return { type: 'mark_read', all: true, ...rid() }
    case 5:
      return { type: r.pick(['subscribe', 'unsubscribe']), topic: `topic-${r.int(0, 20)}`, ...rid() }
    case 6:
      return { type: 'resume', since: r.pick([0, r.int(1, 100), Number.MAX_SAFE_INTEGER]), ...rid() }
    case 7:
      return { type: 'auth', token, userId: user, since: r.int(0, 50) }
    default:
      return { type: 'ping', ...rid() }
  }
}

/** Nesting of `depth` levels, arrays or objects. */
const nested = (r: Rng, depth: number) =>
  r.chance(0.5) ? '['.repeat(depth) + ']'.repeat(depth) : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`

/** One hostile frame. Most are refused; about a quarter are valid, which keeps a connection alive longer. */
function fuzzFrame(r: Rng, token: string, user: string): Fuzz {
  const text = (kind: string, data: string): Fuzz => ({ kind, data, binary: false })
  const roll = r.next()
  if (roll < 0.25) return text('valid', JSON.stringify(validFrame(r, token, user)))
  if (roll < 0.33) return { kind: 'binary', data: r.bytes(r.int(1, 4096)), binary: true }
  if (roll < 0.36) return { kind: 'bytes as text', data: r.bytes(r.int(1, 2048)), binary: false }
  if (roll < 0.44) return text('random text', r.bytes(r.int(0, 2048)).toString('latin1'))
  if (roll < 0.54) {
    const json = JSON.stringify(validFrame(r, token, user))
    return text('truncated', json.slice(0, r.int(0, json.length - 1)))
  }
  if (roll < 0.64) {
    const f = validFrame(r, token, user)
    for (let i = r.int(1, 3); i > 0; i--) f[r.pick(FIELDS)] = r.pick(WRONG_VALUES)
    return text('wrong types', JSON.stringify(f))
  }
  if (roll < 0.69) {
    const deep = nested(r, 5000)
    return text('deep', r.chance(0.5) ? deep : `{"type":"ping","x":${deep}}`)
  }
  if (roll < 0.72) {
    // Up to 60 KB inside a field; now and then just over the 64 KiB frame limit.
    const size = r.chance(0.1) ? 64 * 1024 + r.int(1, 4096) : r.int(1000, 60_000)
    const f = validFrame(r, token, user)
    f[r.pick(['requestId', 'topic', 'token', 'type', 'junk'])] = 'x'.repeat(size)
    return text('huge', JSON.stringify(f))
  }
  if (roll < 0.79)
    return text('unknown type', JSON.stringify({ type: r.bytes(r.int(1, 12)).toString('hex'), requestId: `u${r.int(0, 99)}` }))
  if (roll < 0.9) {
    const f = validFrame(r, token, user)
    const junk = r.pick([
      () => JSON.stringify({ ...f, junk: { a: [1, 2, { b: r.bytes(8).toString('base64') }] }, n: r.int(0, 1e9) }),
      () => `${JSON.stringify(f)}${r.bytes(r.int(1, 16)).toString('latin1')}`,
      () => `\ufeff${JSON.stringify(f)}`,
      () => `  \n\t${JSON.stringify(f)}  `,
      () => JSON.stringify([f]),
      () => JSON.stringify(JSON.stringify(f)),
    ])()
    return text('extra junk', junk)
  }
  if (roll < 0.95) {
    return text(
      'prototype keys',
      r.pick([
        '{"__proto__":{"type":"ping"}}',
        '{"type":"constructor"}',
        '{"type":"__proto__","requestId":"p"}',
        '{"type":"ping","constructor":{"prototype":{"polluted":true}}}',
        '{"type":"mark_read","ids":{"__proto__":[]},"requestId":"q"}',
        '{"type":"toString"}',
      ]),
    )
  }
  return text(
    'numbers',
    r.pick([
      '{"type":"ack","seq":1e400}',
      '{"type":"ack","seq":-0}',
      '{"type":"ack","seq":9007199254740993}',
      '{"type":"history","limit":1e2,"before":1e15}',
      '{"type":"resume","since":0.0}',
      '{"type":"ack","seq":"1"}',
      '{"type":"ack","seq":NaN}',
    ]),
  )
}

// ---------------------------------------------------------------------------
// Fuzzing connections

interface Stats {
  sent: number
  kinds: Record<string, number>
  closes: Record<number, number>
  replies: Record<string, number>
  connections: number
}

/** A bare connection: counts replies, keeps nothing else. */
async function fuzzConnection(url: string, stats: Stats) {
  const ws = new WebSocket(url)
  const waiters = new Set<() => void>()
  let authed = false
  const seen = new Set<string>()
  ws.on('message', (data) => {
    let f: Record<string, unknown>
    try {
      f = JSON.parse(data.toString())
    } catch {
      f = { type: '<unparsable>' }
    }
    const key = f.type === 'error' ? `error:${f.code}` : String(f.type)
    stats.replies[key] = (stats.replies[key] ?? 0) + 1
    if (f.type === 'auth_success') authed = true
    if (typeof f.requestId === 'string') seen.add(f.requestId)
    for (const w of waiters) w()
  })
  ws.on('error', () => {})
  const closed = new Promise<number>((resolve) =>
    ws.on('close', (code) => {
      stats.closes[code] = (stats.closes[code] ?? 0) + 1
      resolve(code)
      for (const w of waiters) w()
    }),
  )
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
  stats.connections++
  const open = () => ws.readyState === WebSocket.OPEN
  /** Resolves once `done()` holds or the socket has closed. */
  const until = (done: () => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (done() || ws.readyState === WebSocket.CLOSED) {
          waiters.delete(check)
          resolve()
        }
      }
      waiters.add(check)
      check()
    })
  return {
    ws,
    closed,
    open,
    authed: () => authed,
    until,
    /** A ping whose reply (pong, or an error before auth) shows every earlier frame was handled. */
    async roundTrip(id: string) {
      if (!open()) return
      ws.send(JSON.stringify({ type: 'ping', requestId: id }))
      await until(() => seen.has(id))
    },
  }
}

async function lane(n: number, r: Rng, stats: Stats, remaining: () => number, take: () => void): Promise<void> {
  const users = [`fuzz-${n}`, `fuzz-${n}-b`]
  for (let round = 0; remaining() > 0; round++) {
    if (round > FRAMES) throw new Error('fuzzing does not progress')
    const user = r.pick(users)
    const token = await t.token(user)
    const c = await fuzzConnection(t.wsUrl, stats)
    if (r.chance(0.6)) {
      c.ws.send(JSON.stringify({ type: 'auth', token, userId: user }))
      await c.until(c.authed)
    }
    // Paced: up to 50 frames with round trips (within the burst of 60). Blast: 61–120 at once, over it.
    const blast = r.chance(0.25)
    const budget = blast ? r.int(61, 120) : r.int(5, 50)
    for (let j = 0; j < budget && remaining() > 0 && c.open(); j++) {
      const f = fuzzFrame(r, token, user)
      c.ws.send(f.data, { binary: f.binary })
      take()
      stats.kinds[f.kind] = (stats.kinds[f.kind] ?? 0) + 1
      if (!blast && j % 6 === 5) await c.roundTrip(`rt-${n}-${round}-${j}`)
    }
    if (c.open()) await c.roundTrip(`end-${n}-${round}`)
    if (c.open()) c.ws.close(1000)
    await c.closed
  }
}

// ---------------------------------------------------------------------------
// Raw sockets for the attack inputs

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

/** Sends raw bytes and resolves with the status line and head of the answer ('' if the socket closes without one). */
function rawRequest(port: number, request: string): Promise<{ status: string; head: string; socket: Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, '127.0.0.1')
    let buf = Buffer.alloc(0)
    socket.on('error', () => {})
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      const end = buf.indexOf('\r\n\r\n')
      if (end >= 0) {
        socket.removeAllListeners('data')
        socket.pause()
        const head = buf.subarray(0, end).toString()
        resolve({ status: head.split('\r\n')[0] ?? '', head, socket, rest: buf.subarray(end + 4) })
      }
    })
    socket.once('close', () =>
      resolve({ status: buf.toString().split('\r\n')[0] ?? '', head: buf.toString(), socket, rest: Buffer.alloc(0) }),
    )
    socket.once('connect', () => socket.write(request, (error) => error && reject(error)))
  })
}

const upgradeRequest = (key: string, headers: string[] = []) =>
  [
    'GET /ws HTTP/1.1',
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${key}`,
    'Sec-WebSocket-Version: 13',
    ...headers,
    '',
    '',
  ].join('\r\n')

/** A client frame: masked, as RFC 6455 requires of clients. */
function clientFrame(opcode: number, payload: Buffer, fin: boolean): Buffer {
  const mask = randomBytes(4)
  const len = payload.length
  const head =
    len < 126
      ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | len])
      : Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 126, len >> 8, len & 0xff])
  const body = Buffer.from(payload)
  for (let i = 0; i < body.length; i++) body[i]! ^= mask[i % 4]!
  return Buffer.concat([head, mask, body])
}

/** Reads server frames (unmasked) off a raw socket; resolves with the close code once a close frame or the end arrives. */
function serverClose(socket: Socket, initial: Buffer): Promise<number | 'end'> {
  return new Promise((resolve) => {
    let buf = initial
    const parse = () => {
      for (;;) {
        if (buf.length < 2) return
        const opcode = buf[0]! & 0x0f
        let len = buf[1]! & 0x7f
        let off = 2
        if (len === 126) {
          if (buf.length < 4) return
          len = buf.readUInt16BE(2)
          off = 4
        } else if (len === 127) {
          if (buf.length < 10) return
          len = Number(buf.readBigUInt64BE(2))
          off = 10
        }
        if (buf.length < off + len) return
        if (opcode === 0x8) {
          resolve(len >= 2 ? buf.readUInt16BE(off) : 1005)
          return
        }
        buf = buf.subarray(off + len)
      }
    }
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      parse()
    })
    socket.once('close', () => resolve('end'))
    socket.resume()
    parse()
  })
}

/** Opens a WebSocket by hand over a raw socket (101 expected), optionally authenticated. */
async function rawWebSocket(user?: string): Promise<{ socket: Socket; rest: Buffer }> {
  const key = randomBytes(16).toString('base64')
  const { status, head, socket, rest } = await rawRequest(t.port, upgradeRequest(key))
  expect(status).toBe('HTTP/1.1 101 Switching Protocols')
  // RFC 6455 §4.2.2: the server proves it read this key.
  expect(/^sec-websocket-accept: *(\S+) *$/im.exec(head)?.[1]).toBe(
    createHash('sha1')
      .update(key + WS_GUID)
      .digest('base64'),
  )
  if (user) socket.write(clientFrame(0x1, Buffer.from(JSON.stringify({ type: 'auth', token: await t.token(user) })), true))
  return { socket, rest }
}

/** Writes fragments until the server closes (or the bound is reached); resolves with what the server said. */
async function endlessFragments(payloadBytes: 0 | 1, bound: number): Promise<{ code: number | 'end'; fragments: number }> {
  const { socket, rest } = await rawWebSocket('fragmenter')
  const closed = serverClose(socket, rest)
  let over = false
  void closed.then(() => {
    over = true
  })
  socket.write(clientFrame(0x1, Buffer.from(payloadBytes ? '{' : ''), false)) // FIN=0, text
  let fragments = 1
  while (!over && fragments < bound && !socket.destroyed) {
    const batch = Buffer.concat(range(1, 512).map(() => clientFrame(0x0, Buffer.from(payloadBytes ? ' ' : ''), false))) // FIN=0, continuation
    fragments += 512
    if (!socket.write(batch)) await new Promise((resolve) => socket.once('drain', resolve).once('close', resolve))
    await new Promise((resolve) => setImmediate(resolve))
  }
  const code = await Promise.race([closed, new Promise<'end'>((resolve) => setTimeout(() => resolve('end'), 10_000))])
  socket.destroy()
  return { code, fragments }
}

// ---------------------------------------------------------------------------

describe('hostile input', () => {
  it(`${FRAMES} fuzzed frames over fresh connections: refused, closed, never a crash`, async () => {
    const r = seedFor('hostile fuzz')
    const lanes = range(1, LANES).map((n) => ({ n, r: rng(r.int(1, 2 ** 31)) })) // one stream per lane, all from the seed
    const stats: Stats = { sent: 0, kinds: {}, closes: {}, replies: {}, connections: 0 }
    // First, each limit once on purpose (the seeded mix below meets them too, but by chance).
    const deliberate = async (what: string, frames: (string | Buffer)[], auth: boolean) => {
      const c = await fuzzConnection(t.wsUrl, stats)
      if (auth) {
        // A user per case: the frame budget is the user's, over all its connections.
        c.ws.send(JSON.stringify({ type: 'auth', token: await t.token(`deliberate ${what}`) }))
        await c.until(c.authed)
      }
      for (const f of frames) {
        if (!c.open()) break
        c.ws.send(f)
        stats.sent++
        stats.kinds[what] = (stats.kinds[what] ?? 0) + 1
      }
      return c.closed
    }
    const ping = JSON.stringify({ type: 'ping' })
    expect(await deliberate('over the rate', Array(100).fill(ping), true)).toBe(CloseCode.RateLimited)
    expect(await deliberate('bad in a row', Array(10).fill('{"type":'), true)).toBe(CloseCode.ProtocolViolation)
    expect(await deliberate('too large', [JSON.stringify({ type: 'ping', requestId: 'x'.repeat(70_000) })], false)).toBe(CloseCode.TooLarge)
    await Promise.all(
      lanes.map(({ n, r: lr }) =>
        lane(
          n,
          lr,
          stats,
          () => FRAMES - stats.sent,
          () => {
            stats.sent++
          },
        ),
      ),
    )
    console.log(`[chaos] hostile fuzz: ${stats.sent} frames over ${stats.connections} connections`)
    console.log(`[chaos] hostile fuzz: kinds ${JSON.stringify(stats.kinds)}`)
    console.log(`[chaos] hostile fuzz: closes ${JSON.stringify(stats.closes)}`)
    console.log(`[chaos] hostile fuzz: replies ${JSON.stringify(stats.replies)}`)
    expect(stats.sent).toBe(FRAMES)
    expect(
      Object.keys(stats.closes)
        .map(Number)
        .filter((code) => !EXPECTED_CLOSES.has(code)),
    ).toEqual([])
    // A frame the parser accepts never ends in an internal error.
    expect(stats.replies[`error:${ErrorCode.Internal}`] ?? 0).toBe(0)
    await vi.waitFor(() => expect(t.server.stats()).toMatchObject({ users: 0, connections: 0, sockets: 0 }), { timeout: 15_000 })
  }, 60_000)

  it('CVE-2021-32640: a Sec-WebSocket-Protocol header built for regex backtracking is answered as fast as a plain one of its length', async () => {
    const key = randomBytes(16).toString('base64')
    const withProtocol = (value: string) => upgradeRequest(key, [`Sec-WebSocket-Protocol: ${value}`])
    /** The status of one request and how long its answer took; its socket is closed afterwards. */
    const timed = async (request: string) => {
      const started = performance.now()
      const { status, socket } = await rawRequest(t.port, request)
      const ms = performance.now() - started
      socket.destroy()
      return { status, ms }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN
    // Under Node's 16 KB header limit, so ws itself parses them (the old regex took seconds on these).
    const hostile = { spaces: `b${' '.repeat(15_000)}x`, commas: `b${', '.repeat(7_000)}x ` }
    for (const [name, value] of Object.entries(hostile)) {
      // The baseline: one plain protocol token as long as the hostile value, timed in the same rounds.
      const plain = `b${'a'.repeat(value.length - 2)}x`
      const times = { plain: [] as number[], hostile: [] as number[] }
      for (let round = 0; round < 3; round++) {
        const base = await timed(withProtocol(plain))
        const bad = await timed(withProtocol(value))
        expect(base.status).toBe('HTTP/1.1 101 Switching Protocols')
        expect(bad.status).toMatch(/^HTTP\/1\.1 (400|101)/)
        times.plain.push(base.ms)
        times.hostile.push(bad.ms)
      }
      const [plainMs, hostileMs] = [median(times.plain), median(times.hostile)]
      console.log(
        `[chaos] CVE-2021-32640 ${name}: ${hostileMs.toFixed(2)} ms, a plain header of its length ${plainMs.toFixed(2)} ms (medians of 3)`,
      )
      // Backtracking is quadratic in the header: hundreds of ms at this length. Below 1 ms, timer noise rules.
      expect(hostileMs).toBeLessThanOrEqual(10 * Math.max(plainMs, 1))
    }
    // Over Node's limit: Node refuses the request before ws sees it.
    const huge = await rawRequest(t.port, withProtocol(`b${' '.repeat(100_000)}x`))
    huge.socket.destroy()
    console.log(`[chaos] CVE-2021-32640 over the header limit: "${huge.status}"`)
    expect(huge.status).toMatch(/^(HTTP\/1\.1 (431|400) |$)/)
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200)
  }, 30_000)

  it('CVE-2024-37890: an upgrade with 2,000 headers is refused, not a crash', async () => {
    const junk = range(1, 2000).map(() => 'x:1') // 10 KB: under the header size limit, at Node's header count limit
    const key = randomBytes(16).toString('base64')
    // The WebSocket headers last: beyond maxHeadersCount, so ws finds no key and no version.
    const last = [
      'GET /ws HTTP/1.1',
      'Host: 127.0.0.1',
      ...junk,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${key}`,
      'Sec-WebSocket-Version: 13',
      '',
      '',
    ].join('\r\n')
    // Upgrade and Connection first (so it is an upgrade), the key and version after the junk.
    const split = [
      'GET /ws HTTP/1.1',
      'Host: 127.0.0.1',
      'Upgrade: websocket',
      'Connection: Upgrade',
      ...junk,
      `Sec-WebSocket-Key: ${key}`,
      'Sec-WebSocket-Version: 13',
      '',
      '',
    ].join('\r\n')
    const results = [await rawRequest(t.port, last), await rawRequest(t.port, split)]
    console.log(`[chaos] CVE-2024-37890: ${results.map((x) => `"${x.status}"`).join(', ')}`)
    for (const { status, socket } of results) {
      socket.destroy()
      expect(status).toMatch(/^(HTTP\/1\.1 (400|431|426) |$)/)
      expect(status).not.toMatch(/ 101 /)
    }
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200)
  }, 30_000)

  it('CVE-2026-62389: endless continuation fragments are cut off', async () => {
    // 1-byte fragments: cut at ws's fragment bound (1008) or the 64 KiB message limit (1009).
    const ones = await endlessFragments(1, 200_000)
    // Empty fragments add no bytes: only a bound on their number can stop them.
    const empties = await endlessFragments(0, 200_000)
    console.log(
      `[chaos] CVE-2026-62389: 1-byte fragments → ${ones.code} after ${ones.fragments}; empty fragments → ${empties.code} after ${empties.fragments}`,
    )
    for (const { code, fragments } of [ones, empties]) {
      expect([1008, CloseCode.TooLarge]).toContain(code)
      expect(fragments).toBeLessThan(200_000)
    }
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200)
  }, 30_000)

  it('afterwards: the server is up, serves a new client, holds nothing over, and its heap stayed bounded', async () => {
    const res = await fetch(`${t.url}/healthz`)
    expect(res.status).toBe(200)
    const c = await authedClient(t, 'survivor')
    await t.server.sendToUser('survivor', { title: 'still here', body: '' })
    expect(await c.next((f) => f.type === 'notification')).toMatchObject({ title: 'still here' })
    c.close()
    await vi.waitFor(() => expect(t.server.stats()).toMatchObject({ users: 0, connections: 0, sockets: 0 }), { timeout: 15_000 })
    const growth = (await retainedHeap()) - heapBefore
    console.log(`[chaos] hostile: retained heap growth ${(growth / MB).toFixed(1)} MB`)
    expect(growth).toBeLessThan(HEAP_BOUND)
  }, 30_000)
})
