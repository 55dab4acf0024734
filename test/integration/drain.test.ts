/**
 * drain(): what SIGTERM does. The server refuses new sockets and says
 * `draining` on /healthz, still takes and delivers publishes, and closes the
 * open sockets with 1001 in batches spread over `drainMs`; close() during a
 * drain closes the rest at once. The CLI drains on SIGTERM, and a second
 * signal closes at once. (The chaos suite's drain.test.ts runs a drain of 500
 * clients to a successor process.)
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { mintToken, PostgresStore } from '../../src/server/index.js'
import { usePostgres } from '../helpers/postgres.js'
import { type ServerProcess, spawnServer } from '../helpers/process.js'
import { seedBacklog } from '../helpers/seed.js'
import {
  API_KEY,
  authedClient,
  httpPublish,
  type RawClient,
  rawClient,
  SECRET,
  startServer,
  type TestServer,
  trickledPost,
  useServer,
} from '../helpers/server.js'

const start = useServer()

/** The status of a WebSocket handshake that the server refuses (or 101). */
function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0)
      ws.terminate()
    })
    ws.on('open', () => {
      resolve(101)
      ws.close()
    })
    ws.on('error', (error) => reject(error))
  })
}

/** Sends a WebSocket handshake on `path` from a peer that reads the answer but never closes its half of the socket. */
function halfOpenUpgrade(port: number, path: string) {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  let text = ''
  socket.on('data', (d) => {
    text += d.toString()
  })
  socket.on('error', () => {})
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  )
  return {
    socket,
    answered: new Promise<string>((resolve) => socket.on('end', () => resolve(text))),
  }
}

/** Whether `p` settles within `ms`. */
const within = (p: Promise<unknown>, ms: number) =>
  Promise.race([p.then(() => 'done'), new Promise((resolve) => setTimeout(() => resolve('timed out'), ms))])

/** When each client's socket closed (ms after `t0`), and with what code. */
function closeTimes(clients: RawClient[], t0: () => number): Promise<{ at: number; code: number }[]> {
  return Promise.all(clients.map((c) => c.closed.then(({ code }) => ({ at: performance.now() - t0(), code }))))
}

/** The article's client: auth without `since`, no acks of its own. */
async function articleClient(s: TestServer, userId: string, options = {}): Promise<RawClient> {
  const c = await rawClient(s.wsUrl, options)
  c.send({ type: 'auth', userId, token: await s.token(userId) })
  await c.next((f) => f.type === 'auth_success')
  return c
}

/**
 * Ann, on the article's client, gets a notification on `a`; `a` drains, before its ack ping (about
 * a second after sending), and her client (ws answers the close) reconnects at once to `b`: she
 * answered the 1001, so she has read everything sent before it, and `b` sends her nothing again.
 */
async function drainedAndBackOn(a: TestServer, b: TestServer): Promise<void> {
  const ann = await articleClient(a, 'ann')
  const bob = await articleClient(a, 'bob') // closed later in the window: the drain goes on meanwhile
  expect((await httpPublish(a.url, { userId: 'ann', title: 'just before the deploy', body: '' })).status).toBe(201)
  await ann.next((f) => f.type === 'notification')
  const drained = a.server.drain()
  await expect(ann.closed).resolves.toMatchObject({ code: 1001 })
  const again = await articleClient(b, 'ann')
  await new Promise((resolve) => setTimeout(resolve, 300))
  expect(again.of('notification').map((f) => f.title)).toEqual([])
  again.close()
  await drained
  bob.ws.terminate()
}

describe('drain', () => {
  it('refuses new sockets, says draining, delivers publishes, and spreads the 1001 closes over drainMs', async () => {
    const drainMs = 2000
    const s = await start({ drainMs })
    const clients: RawClient[] = []
    for (let i = 0; i < 40; i++) clients.push(await authedClient(s, `u${i % 4}`))
    let t0 = 0
    const closes = closeTimes(clients, () => t0)
    t0 = performance.now()
    const drained = s.server.drain()

    const health = await fetch(`${s.url}/healthz`)
    expect(health.status).toBe(503)
    expect(await health.json()).toEqual({ status: 'draining' })
    expect(await upgradeStatus(s.wsUrl)).toBe(503)
    // The store is the truth: a publish during the drain is taken, and reaches the sockets still open.
    const published = await httpPublish(s.url, { userId: 'u3', title: 'during the drain', body: '' })
    expect(published.status).toBe(201)
    const last = clients.at(-1)!
    expect(last.ws.readyState).toBe(WebSocket.OPEN)
    await last.next((f) => f.type === 'notification' && f.title === 'during the drain')
    await expect(s.server.sendToUser('u0', { title: 'in code', body: '' })).resolves.toMatchObject({ recipients: 1 })

    await drained
    const times = await closes
    expect(times.every((t) => t.code === 1001)).toBe(true)
    const at = times.map((t) => t.at).sort((a, b) => a - b)
    // 40 batches of 1, 50 ms apart: the first at once, the last near 1950 ms (later, never earlier, on a busy machine).
    expect(at.at(-1)! - at[0]!).toBeGreaterThan(drainMs / 2)
    expect(at.filter((t) => t < at[0]! + 100).length).toBeLessThanOrEqual(8)
    expect((await fetch(`${s.url}/healthz`).catch(() => undefined))?.status).not.toBe(200)
  })

  it('close() during a drain closes the sockets left at once', async () => {
    const s = await start({ drainMs: 60_000 })
    const clients: RawClient[] = []
    for (let i = 0; i < 10; i++) clients.push(await authedClient(s, `u${i}`))
    const drained = s.server.drain()
    // 10 sockets over 60 s: the first is due in 6 s.
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(clients.filter((c) => c.ws.readyState === WebSocket.OPEN).length).toBe(10)
    const t0 = performance.now()
    await s.server.close()
    await drained
    for (const c of clients) await expect(c.closed).resolves.toMatchObject({ code: 1001 })
    expect(performance.now() - t0).toBeLessThan(10_000)
  })

  it('close() (a second SIGTERM) while a drain waits for HTTP requests in flight cuts them at once, as close() alone does', async () => {
    // Regression: the drain's 2 s grace for requests in flight was set once, and close() during it still waited the 2 s.
    const s = await start({ drainMs: 5000 })
    // A request in flight: a publish whose body is still arriving (it may take bodyTimeoutMs, 10 s).
    const auth = { authorization: `Bearer ${API_KEY}` }
    const inFlight = trickledPost(s.port, '/api/notifications', auth, '{"userId":"ann",').catch(() => undefined)
    await new Promise((resolve) => setTimeout(resolve, 100))
    // No socket open: the drain goes straight to closing the HTTP server, giving requests in flight 2 s.
    const drained = s.server.drain()
    await new Promise((resolve) => setTimeout(resolve, 100))
    const t0 = performance.now()
    await s.server.close() // what the CLI does on a second SIGTERM, or on SIGINT
    const took = performance.now() - t0
    await drained
    await inFlight
    // Documented: "A second SIGTERM, or SIGINT (Ctrl-C), closes what is left at once"; close() cuts requests in flight.
    expect(took).toBeLessThan(500)
  })

  it('acks what a socket was sent once its client answers the 1001: a client of the article’s protocol resumes after it, nothing twice', async () => {
    const s = await start({ drainMs: 0 })
    // The article's client: no `since`, no acks of its own (the server acks for it about a second after sending).
    const article = await rawClient(s.wsUrl)
    article.send({ type: 'auth', token: await s.token('ann') })
    await article.next((f) => f.type === 'auth_success')
    expect((await httpPublish(s.url, { userId: 'ann', title: 'just before the deploy', body: '' })).status).toBe(201)
    await article.next((f) => f.type === 'notification')
    // The deploy comes before the second is up: the client answers the close (ws does), having read everything before it.
    await s.server.drain()
    await expect(article.closed).resolves.toMatchObject({ code: 1001 })
    await s.restart()
    const again = await rawClient(s.wsUrl)
    again.send({ type: 'auth', token: await s.token('ann') })
    expect(await again.next((f) => f.type === 'auth_success')).toMatchObject({ seq: 1 })
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(again.of('notification')).toEqual([])
    again.close()
  })

  // The close's ack joins the store's ack batch (50 ms): a client that reconnects at once to another process
  // (the successor on the same file, the others on PostgreSQL) would be replayed from the cursor before it.
  it('a client of the article’s protocol drained off one process and back at once on its successor is not sent again what it had', async () => {
    const a = await start({ drainMs: 1000 })
    const b = await startServer({ database: a.database })
    try {
      await drainedAndBackOn(a, b)
    } finally {
      await b.dispose()
    }
  })

  // An upgraded socket is out of the HTTP server's timeouts and closeAllConnections(): one the server answered with
  // end() alone stayed open while its peer kept its half, and close() (the drain's end, SIGTERM) waited for ever.
  it('a refused handshake whose peer keeps its half open holds no drain: its socket is closed once answered', async () => {
    const s = await start({ drainMs: 500 })
    const ann = await authedClient(s, 'ann')
    const elsewhere = halfOpenUpgrade(s.port, '/elsewhere')
    expect(await elsewhere.answered).toMatch(/^HTTP\/1\.1 404 /)
    const drained = s.server.drain()
    const late = halfOpenUpgrade(s.port, '/ws')
    expect(await late.answered).toMatch(/^HTTP\/1\.1 503 /)
    expect((await ann.closed).code).toBe(1001)
    try {
      // The drain ends once the HTTP server has closed: every socket it held, these two included, is gone.
      expect(await within(drained, 8000)).toBe('done')
    } finally {
      elsewhere.socket.destroy()
      late.socket.destroy()
      await drained
    }
  }, 20_000)

  it('drains at once with drainMs 0 or with no socket open', async () => {
    const s = await start({ drainMs: 0 })
    const clients = await Promise.all([authedClient(s, 'ann'), authedClient(s, 'bob')])
    await s.server.drain()
    for (const c of clients) await expect(c.closed).resolves.toMatchObject({ code: 1001 })
    const idle = await start({ drainMs: 60_000 })
    const t0 = performance.now()
    await idle.server.drain()
    expect(performance.now() - t0).toBeLessThan(10_000)
  })
})

describe('belfry-server drain', () => {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-drain-'))
  const running: ServerProcess[] = []
  afterAll(() => {
    for (const p of running) p.child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'drains on SIGTERM over BELFRY_DRAIN_MS; a following %s closes what is left at once and exits 0',
    async (second) => {
      const env = { BELFRY_SECRET: SECRET, BELFRY_API_KEY: API_KEY, BELFRY_DB: join(dir, `${second}.db`), HOST: '127.0.0.1' }
      const p = await spawnServer({ ...env, BELFRY_DRAIN_MS: '60000' })
      running.push(p)
      const exited = new Promise<number | null>((resolve) => p.child.once('exit', resolve))
      const clients: RawClient[] = []
      for (const user of ['ann', 'bob', 'cy']) {
        const c = await rawClient(p.wsUrl)
        c.send({ type: 'auth', token: await mintToken(SECRET, user), since: 0 })
        await c.next((f) => f.type === 'replayed' && f.more === false)
        clients.push(c)
      }
      p.child.kill('SIGTERM')
      // Draining: out of the load balancer's rotation, sockets still open (3 over 60 s: the first at 10 s).
      for (let i = 0; ; i++) {
        const res = await fetch(`${p.url}/healthz`)
        if (res.status === 503) {
          expect(await res.json()).toEqual({ status: 'draining' })
          break
        }
        if (i > 100) throw new Error('not draining after SIGTERM')
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      expect(clients.every((c) => c.ws.readyState === WebSocket.OPEN)).toBe(true)
      p.child.kill(second)
      for (const c of clients) await expect(c.closed).resolves.toMatchObject({ code: 1001 })
      expect(await exited).toBe(0)
    },
    20_000,
  )
})

// A drain's successor on the same file reads the user's ack as written when the client comes back: what the
// store holds when the 1001 reaches the client must cover all it was sent, however the pongs and sends fall.
describe('drain: a client of the article’s protocol is acked before its 1001', () => {
  /**
   * Ann, on the article's client answering pings by hand, and `others` more sockets on `a` (closed later in the
   * window: the drain goes on meanwhile); `scene` plays her pongs and publishes; then `a` drains and she comes
   * back at once on `b`, its successor on the same file. The ack written when the 1001 reached her must be the
   * last seq she had, and `b` must send her nothing again: only what `a` did not send her (`onSuccessor`).
   */
  async function drainedOnto(
    drainMs: number,
    others: number,
    scene: (ann: RawClient, a: TestServer) => Promise<void>,
    onSuccessor: string[] = [],
  ) {
    const a = await startServer({ drainMs })
    const b = await startServer({ database: a.database })
    const db = new Database(a.database, { readonly: true })
    try {
      const ann = await articleClient(a, 'ann', { autoPong: false })
      const rest = await Promise.all(Array.from({ length: others }, (_, i) => articleClient(a, `bob${i}`)))
      await scene(ann, a)
      let ackedAtClose = -1
      ann.ws.on('close', () => {
        ackedAtClose = (db.prepare('SELECT acked_seq AS s FROM users WHERE id = ?').get('ann') as { s: number }).s
      })
      const drained = a.server.drain()
      await expect(ann.closed).resolves.toMatchObject({ code: 1001 })
      const had = Math.max(...ann.of('notification').map((f) => f.seq as number))
      const again = await articleClient(b, 'ann')
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect({ ackedAtClose, onSuccessor: again.of('notification').map((f) => f.title) }).toEqual({ ackedAtClose: had, onSuccessor })
      again.close()
      await drained
      for (const c of rest) c.ws.terminate()
    } finally {
      db.close()
      await b.dispose()
      await a.dispose()
    }
  }

  /** Publishes `title` to ann and waits for it. */
  const sent = async (a: TestServer, ann: RawClient, title: string) => {
    expect((await httpPublish(a.url, { userId: 'ann', title, body: '' })).status).toBe(201)
    return ann.next((f) => f.title === title)
  }

  /**
   * Holds ann's pong to the first ping carrying `seq` (the implicit-ack ping for it, about a second after the
   * send) until the scene calls the function this resolves with; every other ping `answer`s.
   */
  const heldPong = (ann: RawClient, seq: number, answer: (data: Buffer) => void) =>
    new Promise<() => void>((resolve) => {
      let first = true
      ann.ws.on('ping', (data: Buffer) => {
        if (first && data.toString() === String(seq)) {
          first = false
          resolve(() => ann.ws.pong(data))
        } else answer(data)
      })
    })

  it('a notification published while the drain waits for the ack ping’s pong is not sent live: the successor sends it, once', async () => {
    let leavePing = ''
    let seq = ''
    await drainedOnto(
      1000,
      1,
      async (ann, a) => {
        seq = String((await sent(a, ann, 'one')).seq)
        // The drain's ack ping is answered once a notification published meanwhile (publishes go on) would have arrived.
        ann.ws.on('ping', (data: Buffer) => {
          if (leavePing || data.toString() !== seq) return void ann.ws.pong(data)
          leavePing = data.toString()
          void httpPublish(a.url, { userId: 'ann', title: 'two, during the wait', body: '' }).then(async () => {
            await Promise.race([
              ann.next((f) => f.title === 'two, during the wait').catch(() => {}),
              new Promise((r) => setTimeout(r, 300)),
            ])
            ann.ws.pong(data)
          })
        })
      },
      ['two, during the wait'],
    )
    expect(leavePing).toBe(seq)
  })

  it('an earlier ping’s ack written during the drain’s wait does not end it: the 1001 waits for its own ping’s ack', async () => {
    await drainedOnto(400, 12, async (ann, a) => {
      const one = await sent(a, ann, 'one')
      // The implicit-ack ping for "one" is answered when the scene says; any other a little late (150 ms: a
      // client on a slower network than localhost).
      const answerFirst = await heldPong(ann, one.seq as number, (data) =>
        setTimeout(() => ann.ws.readyState === ann.ws.OPEN && ann.ws.pong(data), 150),
      )
      await sent(a, ann, 'two')
      // The pong for "one" acks it (into the 50 ms ack batch); the drain reaches ann within that window.
      answerFirst()
      await new Promise((resolve) => setTimeout(resolve, 15))
    })
  })

  it('a pong whose ack is not written yet when the drain reaches the client: the 1001 waits for that write', async () => {
    await drainedOnto(400, 12, async (ann, a) => {
      const one = await sent(a, ann, 'one')
      // The implicit-ack ping for "one" is answered when the scene says; any other at once.
      const answer = await heldPong(ann, one.seq as number, (data) => ann.ws.pong(data))
      // Its pong acks "one" (into the 50 ms ack batch); the drain reaches ann within that window.
      answer()
      await new Promise((resolve) => setTimeout(resolve, 15))
    })
  })

  it('in the middle of its replay: it is sent no more rounds, and the successor goes on from what it had', async () => {
    // Its rounds went on back to back while the drain waited for its ack, which never caught up: closed acked
    // thousands of seqs behind what it had, and the successor sent those again.
    const limits = { sendBytesPerSecond: 1 << 30, sendBurstBytes: 1 << 30 } // rounds as fast as the socket takes them
    const a = await start({ drainMs: 100, limits })
    const b = await startServer({ database: a.database, limits })
    try {
      seedBacklog(a, 'ann', 300_000)
      const ann = await articleClient(a, 'ann')
      await ann.next((f) => f.type === 'notification' && (f.seq as number) >= 1000)
      const db = new Database(a.database, { readonly: true })
      let ackedAtClose = -1
      ann.ws.on('close', () => {
        ackedAtClose = (db.prepare('SELECT acked_seq AS s FROM users WHERE id = ?').get('ann') as { s: number }).s
      })
      const drained = a.server.drain()
      await expect(ann.closed).resolves.toMatchObject({ code: 1001 })
      db.close()
      const last = Math.max(...ann.of('notification').map((f) => f.seq as number))
      expect(last).toBeLessThan(300_000) // still in the middle of the replay
      expect({ ackedAtClose }).toEqual({ ackedAtClose: last })
      const again = await articleClient(b, 'ann')
      expect((await again.next((f) => f.type === 'notification')).seq).toBe(last + 1)
      again.ws.terminate()
      await drained
    } finally {
      await b.dispose()
    }
  }, 30_000)
})

describe('drain on PostgreSQL', () => {
  const db = usePostgres()

  it('a client of the article’s protocol drained off one process and back at once on another is not sent again what it had', async () => {
    const schema = `drain_${randomBytes(6).toString('hex')}`
    const a = await startServer({ store: await PostgresStore.open(db.url, { schema }), drainMs: 1000 })
    const b = await startServer({ store: await PostgresStore.open(db.url, { schema }) })
    try {
      await drainedAndBackOn(a, b)
    } finally {
      await Promise.all([a.dispose(), b.dispose()])
    }
  })

  // Regression: the drain's ack ping waited for the write of its pong's ack (some 50 ms, the ack batch), while
  // live notifications went on: with one every write, the written ack never caught up, the wait ran out its
  // 1 s, and the client came back on the other process acked behind what it had.
  it('article clients drained during a steady stream of publishes get every seq once, in order, across the two processes', async () => {
    const USERS = ['ann', 'bob', 'cat', 'dan', 'eve']
    const schema = `drain_${randomBytes(6).toString('hex')}`
    const a = await startServer({ store: await PostgresStore.open(db.url, { schema }), drainMs: 300 })
    const b = await startServer({ store: await PostgresStore.open(db.url, { schema }) })
    const check = await PostgresStore.open(db.url, { schema })
    const sockets: RawClient[] = []
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
    try {
      /** Every seq each user's client was handed, on either process, in order. */
      const got = new Map<string, number[]>(USERS.map((u) => [u, []]))
      const connect = async (s: TestServer, user: string) => {
        const c = await articleClient(s, user)
        sockets.push(c)
        for (const f of c.of('notification')) got.get(user)!.push(f.seq as number)
        c.ws.on('message', (data) => {
          const f = JSON.parse(data.toString()) as { type: string; seq?: number }
          if (f.type === 'notification') got.get(user)!.push(f.seq!)
        })
        return c
      }
      // Closed by the drain, each is back at once on the other process.
      const onA = await Promise.all(USERS.map((user) => connect(a, user)))
      const onB = onA.map((c, i) => c.closed.then(() => connect(b, USERS[i]!)))
      let stop = false
      let n = 0
      // A notification to every user every 5 ms or so: on `a` while it takes publishes (a draining process does), then on `b`.
      const stream = (async () => {
        for (; !stop; await sleep(5)) {
          const note = { title: `n${n++}`, body: '' }
          await a.server.sendToUsers(USERS, note).catch(() => b.server.sendToUsers(USERS, note))
        }
      })()
      await sleep(300)
      await a.server.drain()
      await Promise.all(onB)
      await sleep(300)
      stop = true
      await stream
      // One more on `b`: a client that missed one of `a`'s last publishes sees the gap and reads the store.
      await b.server.sendToUsers(USERS, { title: 'last', body: '' })
      for (const user of USERS) {
        const latest = (await check.user(user))!.latestSeq
        await expect.poll(() => got.get(user)!.at(-1), { timeout: 10_000 }).toBe(latest)
        expect(got.get(user), `${user}: every seq once, in order`).toEqual(Array.from({ length: latest }, (_, i) => i + 1))
      }
    } finally {
      for (const c of sockets) c.ws.terminate()
      await check.close()
      await Promise.all([a.dispose(), b.dispose()])
    }
  }, 60_000)
})
