/**
 * A drain on PostgreSQL while a steady stream of publishes goes on to the clients it closes. A client
 * of the article's protocol (no cursor of its own) resumes where the user's acknowledged cursor is, so
 * the drain acks it first (Connection.leave): "its ping answered and written (at most 1 s), so that the
 * process it reconnects to does not send it again what it had" (README, Draining; docs/protocol.md,
 * "A drain acks first"). The clients here answer every ping at once, on loopback: the 1 s is not
 * theirs to spend. Each comes back at once on the other process (a load balancer's next pick) and must
 * hold its user's inbox once each, in order.
 */
import { randomBytes } from 'node:crypto'
import { expect, it } from 'vitest'
import { PostgresStore } from '../../src/server/index.js'
import { usePostgres } from '../helpers/postgres.js'
import { type RawClient, rawClient, startServer, type TestServer } from '../helpers/server.js'

const db = usePostgres()

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const USERS = ['ann', 'bob', 'cat', 'dan', 'eve']
/** A notification to every user this often: a busy inbox, not a flood (100 or more a second). */
const STREAM_MS = 5

it('a client of the article’s protocol drained during a steady stream of publishes is sent nothing twice on the next process', async () => {
  const schema = `review_drain_${randomBytes(5).toString('hex')}`
  const a = await startServer({ store: await PostgresStore.open(db.url, { schema }), drainMs: 300 })
  const b = await startServer({ store: await PostgresStore.open(db.url, { schema }) })
  const check = await PostgresStore.open(db.url, { schema })
  const sockets: RawClient[] = []
  try {
    /** Every notification each user's article client was handed, on either process, in order. */
    const got = new Map<string, number[]>(USERS.map((u) => [u, []]))
    /** The article's client: auth without `since`; its WebSocket answers every ping by itself. */
    const connect = async (s: TestServer, user: string): Promise<RawClient> => {
      const c = await rawClient(s.wsUrl)
      sockets.push(c)
      c.ws.on('message', (data) => {
        const f = JSON.parse(data.toString()) as { type: string; seq?: number }
        if (f.type === 'notification') got.get(user)!.push(f.seq!)
      })
      c.send({ type: 'auth', userId: user, token: await s.token(user) })
      await c.next((f) => f.type === 'auth_success')
      return c
    }
    const onB: Promise<RawClient>[] = []
    for (const user of USERS) {
      const c = await connect(a, user)
      // Closed by the drain: back at once on the other process.
      onB.push(c.closed.then(() => connect(b, user)))
    }

    let stop = false
    let n = 0
    const stream = (async () => {
      while (!stop) {
        const title = `n${n++}`
        // On `a` while it takes publishes (a draining process does), then on `b`.
        await a.server.sendToUsers(USERS, { title, body: '' }).catch(() => b.server.sendToUsers(USERS, { title, body: '' }))
        await sleep(STREAM_MS)
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
