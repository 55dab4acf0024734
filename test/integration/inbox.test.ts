import { randomUUID } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { SqliteStore } from '../../src/server/index.js'
import { authedClient, httpPublish, type RawClient, rawClient, settle, startServer, type TestServer } from '../helpers/server.js'

let t: TestServer | undefined
const clients: RawClient[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  await t?.dispose()
  t = undefined
})

async function server(): Promise<TestServer> {
  t = await startServer()
  return t
}

async function connect(s: TestServer, userId: string, extra: { since?: number } = {}): Promise<RawClient> {
  const c = await authedClient(s, userId, extra)
  clients.push(c)
  return c
}

/** Sends a request frame and resolves with the reply that echoes its requestId. */
async function request(c: RawClient, f: Record<string, unknown>, replyType: string): Promise<Record<string, unknown>> {
  const requestId = randomUUID()
  const from = c.frames.length
  c.send({ ...f, requestId })
  const reply = await c.next((r) => r.requestId === requestId, from)
  expect(reply.type).toBe(replyType)
  return reply
}

async function publishMany(s: TestServer, userId: string, count: number): Promise<string[]> {
  const ids: string[] = []
  for (let i = 1; i <= count; i++) ids.push((await s.server.sendToUser(userId, { title: `n${i}`, body: `body ${i}` })).id)
  return ids
}

const sorted = (ids: unknown) => [...(ids as string[])].sort()

describe('unread count', () => {
  it('reports the unread count in auth_success', async () => {
    const s = await server()
    const fresh = await connect(s, 'alice')
    expect(fresh.frames[0]).toMatchObject({ type: 'auth_success', userId: 'alice', seq: 0, unreadCount: 0 })

    const ids = await publishMany(s, 'alice', 3)
    const a = await connect(s, 'alice')
    expect(a.frames[0]).toMatchObject({ type: 'auth_success', seq: 3, unreadCount: 3 })

    await request(a, { type: 'mark_read', ids: [ids[0]] }, 'read')
    expect((await connect(s, 'alice')).frames[0]).toMatchObject({ seq: 3, unreadCount: 2 })

    await request(a, { type: 'mark_read', all: true }, 'read')
    expect((await connect(s, 'alice')).frames[0]).toMatchObject({ seq: 3, unreadCount: 0 })

    await s.server.sendToUser('alice', { title: 'new', body: '' })
    expect((await connect(s, 'alice')).frames[0]).toMatchObject({ seq: 4, unreadCount: 1 })
  })

  it('tells a client that connects again, with none unread, that all it has is read: what was read while it was away', async () => {
    const s = await server()
    const ids = await publishMany(s, 'alice', 3)
    const phone = await connect(s, 'alice')
    const laptop = await connect(s, 'alice', { since: 3 })
    expect(laptop.frames.map((f) => f.type)).toEqual(['auth_success', 'replayed'])
    laptop.close()
    // While the laptop is away, the phone reads one, then all.
    await request(phone, { type: 'mark_read', ids: [ids[2]] }, 'read')
    const some = await connect(s, 'alice', { since: 3 })
    expect(some.frames.map((f) => f.type)).toEqual(['auth_success', 'replayed']) // two unread: not this way
    await request(phone, { type: 'mark_read', all: true }, 'read')
    const back = await connect(s, 'alice', { since: 3 })
    expect(back.frames.slice(0, 3)).toEqual([
      expect.objectContaining({ type: 'auth_success', seq: 3, unreadCount: 0 }),
      { type: 'read', ids: [], all: true, seq: 3, unreadCount: 0 },
      expect.objectContaining({ type: 'replayed' }),
    ])
    // A client without a cursor may show history pages: told too.
    expect((await connect(s, 'alice')).frames.map((f) => f.type)).toEqual(['auth_success', 'read', 'replayed'])
  })
})

describe('mark_read', () => {
  it('reaches a connection whose auth is still under way after its auth_success, which stays the first frame', async () => {
    let slow = false
    // An app whose permission check takes a while: auth re-checks each stored topic with it.
    t = await startServer({
      authorizeSubscribe: async () => {
        if (slow) await new Promise((resolve) => setTimeout(resolve, 300))
        return true
      },
    })
    await publishMany(t, 'ann', 1)
    const a = await connect(t, 'ann')
    await request(a, { type: 'subscribe', topic: 'deploys' }, 'subscribed')
    slow = true
    const b = await rawClient(t.wsUrl)
    clients.push(b)
    b.send({ type: 'auth', token: await t.token('ann'), since: 0 })
    await new Promise((resolve) => setTimeout(resolve, 100)) // b is signed in, its topics being re-checked
    await request(a, { type: 'mark_read', all: true }, 'read')
    await b.next((f) => f.type === 'replayed')
    expect(b.frames[0]).toMatchObject({ type: 'auth_success', unreadCount: 1 }) // read before the mark
    expect(b.frames[1]).toMatchObject({ type: 'read', all: true, unreadCount: 0 }) // and brought up to date
  })

  it('answers the requester, pushes to the same user’s other connections, and to no one else', async () => {
    const s = await server()
    const ids = await publishMany(s, 'alice', 3)
    await publishMany(s, 'bob', 2)
    const requester = await connect(s, 'alice')
    const otherTab = await connect(s, 'alice')
    const bob = await connect(s, 'bob')

    const reply = await request(requester, { type: 'mark_read', ids: [ids[0], ids[2]] }, 'read')
    expect({ ...reply, ids: sorted(reply.ids) }).toEqual({
      type: 'read',
      ids: sorted([ids[0], ids[2]]),
      all: false,
      seq: 3,
      unreadCount: 1,
      requestId: reply.requestId,
    })

    const pushed = await otherTab.next((f) => f.type === 'read')
    expect(pushed).not.toHaveProperty('requestId')
    expect({ ...pushed, ids: sorted(pushed.ids) }).toEqual({
      type: 'read',
      ids: sorted([ids[0], ids[2]]),
      all: false,
      seq: 3,
      unreadCount: 1,
    })

    await settle(requester)
    await settle(bob)
    expect(requester.of('read')).toHaveLength(1) // its own change is not echoed back
    expect(bob.of('read')).toEqual([])
    expect(otherTab.of('read')).toHaveLength(1)
  })

  it('marks everything read with all: true, on every connection', async () => {
    const s = await server()
    await publishMany(s, 'alice', 4)
    await publishMany(s, 'bob', 1)
    const a = await connect(s, 'alice')
    const b = await connect(s, 'alice')
    const bob = await connect(s, 'bob')

    const reply = await request(a, { type: 'mark_read', all: true }, 'read')
    expect(reply).toEqual({ type: 'read', ids: [], all: true, seq: 4, unreadCount: 0, requestId: reply.requestId })
    const pushed = await b.next((f) => f.type === 'read')
    expect(pushed).toEqual({ type: 'read', ids: [], all: true, seq: 4, unreadCount: 0 })

    await settle(bob)
    expect(bob.of('read')).toEqual([])
    expect((await connect(s, 'bob')).frames[0]).toMatchObject({ unreadCount: 1 })
    expect((await connect(s, 'alice')).frames[0]).toMatchObject({ unreadCount: 0 })
  })

  it('marks all up to a bound (seq): what is above it stays unread; a frame at the latest follows, on every connection', async () => {
    const s = await server()
    await publishMany(s, 'alice', 4)
    const a = await connect(s, 'alice')
    const b = await connect(s, 'alice')

    const from = a.frames.length
    const reply = await request(a, { type: 'mark_read', all: true, seq: 2 }, 'read')
    expect(reply).toEqual({ type: 'read', ids: [], all: true, seq: 2, unreadCount: 2, requestId: reply.requestId })
    // The count covers 3 and 4 as well: the frame that says so comes next, before anything else.
    const count = { type: 'read', ids: [], all: false, seq: 4, unreadCount: 2 }
    await a.next((f) => f.type === 'read' && f.all === false, from)
    expect(a.frames.slice(from)).toEqual([reply, count])
    await b.next((f) => f.type === 'read' && f.all === false)
    expect(b.of('read')).toEqual([{ type: 'read', ids: [], all: true, seq: 2, unreadCount: 2 }, count])

    const history = await request(a, { type: 'history' }, 'history')
    expect((history.items as { seq: number; read: boolean }[]).map((n) => [n.seq, n.read])).toEqual([
      [4, false],
      [3, false],
      [2, true],
      [1, true],
    ])
    expect((await connect(s, 'alice')).frames[0]).toMatchObject({ unreadCount: 2 })
    // A bound past the latest is the latest: one frame, as without a bound.
    const rest = await request(a, { type: 'mark_read', all: true, seq: 99 }, 'read')
    expect(rest).toMatchObject({ all: true, seq: 4, unreadCount: 0 })
    await b.next((f) => f.type === 'read' && f.unreadCount === 0)
    await settle(a)
    expect(a.of('read').slice(-1)).toEqual([rest])
  })

  it('changes nothing and pushes nothing for ids already read or unknown, and answers with the ids asked (none is unread)', async () => {
    const s = await server()
    const ids = await publishMany(s, 'alice', 2)
    const [bobsId] = await publishMany(s, 'bob', 1)
    const a = await connect(s, 'alice')
    const b = await connect(s, 'alice')
    await request(a, { type: 'mark_read', ids: [ids[0]] }, 'read')
    await b.next((f) => f.type === 'read')

    const again = await request(a, { type: 'mark_read', ids: [ids[0], 'no-such-id', bobsId] }, 'read')
    // The answer a request sent again (its first reply lost) must give: the same as the first.
    expect(again).toEqual({
      type: 'read',
      ids: [ids[0], 'no-such-id', bobsId],
      all: false,
      seq: 2,
      unreadCount: 1,
      requestId: again.requestId,
    })
    await settle(b)
    expect(b.of('read')).toHaveLength(1)
    // Bob's notification was not touched through Alice's connection.
    expect((await connect(s, 'bob')).frames[0]).toMatchObject({ unreadCount: 1 })
  })

  it('marks a broadcast read in the marking user’s inbox only', async () => {
    const s = await server()
    const a = await connect(s, 'alice')
    const bob = await connect(s, 'bob')
    const { id, recipients } = await s.server.broadcast({ title: 'to all', body: '' })
    expect(recipients).toBe(2)
    const reply = await request(a, { type: 'mark_read', ids: [id] }, 'read')
    expect(reply).toMatchObject({ ids: [id], unreadCount: 0 })
    await settle(bob)
    expect(bob.of('read')).toEqual([])
    const page = await request(bob, { type: 'history' }, 'history')
    expect(page.items).toMatchObject([{ id, read: false }])
  })

  it('refuses a mark_read with neither ids nor all, echoing the requestId', async () => {
    const s = await server()
    const a = await connect(s, 'alice')
    const reply = await request(a, { type: 'mark_read' }, 'error')
    expect(reply).toMatchObject({ code: 'bad_frame' })
  })
})

describe('history', () => {
  it('pages newest first by seq, with a next cursor, and walks every notification once', async () => {
    const s = await server()
    const ids = await publishMany(s, 'alice', 12)
    const a = await connect(s, 'alice')

    const pages: Record<string, unknown>[] = []
    let before: number | undefined
    for (let i = 0; i < 10; i++) {
      const page = await request(a, { type: 'history', limit: 5, ...(before === undefined ? {} : { before }) }, 'history')
      pages.push(page)
      if (page.next === undefined) break
      before = page.next as number
    }
    const seqsOf = (p: Record<string, unknown>) => (p.items as { seq: number }[]).map((n) => n.seq)
    expect(pages.map(seqsOf)).toEqual([
      [12, 11, 10, 9, 8],
      [7, 6, 5, 4, 3],
      [2, 1],
    ])
    expect(pages.map((p) => p.next)).toEqual([8, 3, undefined])
    const walked = pages.flatMap((p) => (p.items as { id: string }[]).map((n) => n.id))
    expect(walked).toEqual([...ids].reverse())
    expect(new Set(walked).size).toBe(12)
  })

  it('ends without next when the last page is full and reaches seq 1', async () => {
    const s = await server()
    await publishMany(s, 'alice', 10)
    const a = await connect(s, 'alice')
    const first = await request(a, { type: 'history', limit: 5 }, 'history')
    expect(first.next).toBe(6)
    const second = await request(a, { type: 'history', limit: 5, before: 6 }, 'history')
    expect((second.items as { seq: number }[]).map((n) => n.seq)).toEqual([5, 4, 3, 2, 1])
    expect(second).not.toHaveProperty('next')
  })

  it('returns up to 20 by default, and an empty page for an empty inbox', async () => {
    const s = await server()
    const empty = await request(await connect(s, 'nobody'), { type: 'history' }, 'history')
    expect(empty).toEqual({ type: 'history', items: [], requestId: empty.requestId })

    await publishMany(s, 'alice', 25)
    const page = await request(await connect(s, 'alice'), { type: 'history' }, 'history')
    expect((page.items as { seq: number }[]).map((n) => n.seq)).toEqual(Array.from({ length: 20 }, (_, i) => 25 - i))
    expect(page.next).toBe(6)
  })

  it('shows the read state, and so does a replay', async () => {
    const s = await server()
    const ids = await publishMany(s, 'alice', 4)
    const a = await connect(s, 'alice')
    await request(a, { type: 'mark_read', ids: [ids[1], ids[3]] }, 'read')
    const page = await request(a, { type: 'history' }, 'history')
    expect((page.items as { seq: number; read: boolean }[]).map((n) => [n.seq, n.read])).toEqual([
      [4, true],
      [3, false],
      [2, true],
      [1, false],
    ])
    const replay = await connect(s, 'alice', { since: 0 })
    expect(replay.of('notification').map((n) => [n.seq, n.read])).toEqual([
      [1, false],
      [2, true],
      [3, false],
      [4, true],
    ])
    await request(a, { type: 'mark_read', all: true }, 'read')
    const after = await request(a, { type: 'history' }, 'history')
    expect((after.items as { read: boolean }[]).every((n) => n.read)).toBe(true)
  })

  it('refuses a limit over the maximum, echoing the requestId', async () => {
    const s = await server()
    const reply = await request(await connect(s, 'alice'), { type: 'history', limit: 101 }, 'error')
    expect(reply).toMatchObject({ code: 'bad_frame' })
  })
})

describe('topics', () => {
  it('delivers a topic publish to subscribers only, with the topic set, until they unsubscribe', async () => {
    const s = await server()
    const sub = await connect(s, 'alice')
    const other = await connect(s, 'bob')
    const subscribed = await request(sub, { type: 'subscribe', topic: 'deploys' }, 'subscribed')
    expect(subscribed).toEqual({ type: 'subscribed', topic: 'deploys', requestId: subscribed.requestId })

    const first = await s.server.publish('deploys', { title: 'v1 shipped', body: '' })
    expect(first.recipients).toBe(1)
    const got = await sub.next((f) => f.type === 'notification')
    expect(got).toMatchObject({ id: first.id, topic: 'deploys', title: 'v1 shipped', seq: 1 })
    // Another topic does not reach her.
    expect((await s.server.publish('other-topic', { title: 'x', body: '' })).recipients).toBe(0)

    const unsubscribed = await request(sub, { type: 'unsubscribe', topic: 'deploys' }, 'unsubscribed')
    expect(unsubscribed).toMatchObject({ type: 'unsubscribed', topic: 'deploys' })
    expect((await s.server.publish('deploys', { title: 'v2 shipped', body: '' })).recipients).toBe(0)
    // A direct notification after it proves the socket is still live and v2 never came.
    await s.server.sendToUser('alice', { title: 'direct', body: '' })
    await sub.next((f) => f.type === 'notification' && f.title === 'direct')
    expect(sub.of('notification').map((f) => f.title)).toEqual(['v1 shipped', 'direct'])
    expect(sub.of('notification')[1]).not.toHaveProperty('topic')

    await settle(other)
    expect(other.of('notification')).toEqual([])
  })

  it('keeps a subscription across connections and stores topic publishes for offline subscribers', async () => {
    const s = await server()
    const first = await connect(s, 'alice')
    await request(first, { type: 'subscribe', topic: 'news' }, 'subscribed')
    first.close()
    await s.server.publish('news', { title: 'while away', body: '' })
    const back = await connect(s, 'alice')
    expect(back.of('notification')).toMatchObject([{ title: 'while away', topic: 'news', seq: 1 }])
  })

  it('publishes to a topic over HTTP', async () => {
    const s = await server()
    const sub = await connect(s, 'alice')
    await request(sub, { type: 'subscribe', topic: 'http-topic' }, 'subscribed')
    const res = await httpPublish(s.url, { topic: 'http-topic', title: 'over http', body: 'b' })
    expect(res.status).toBe(201)
    const got = await sub.next((f) => f.type === 'notification')
    expect(got).toMatchObject({ title: 'over http', topic: 'http-topic' })
  })
})

describe('broadcast', () => {
  it('reaches every user the server has seen, online or not, and no one it has not', async () => {
    const s = await server()
    const online = await connect(s, 'alice')
    const once = await connect(s, 'bob')
    once.close()
    await s.server.sendToUser('dora', { title: 'direct', body: '' }) // known through a publish

    const { id, recipients } = await s.server.broadcast({ title: 'maintenance', body: 'tonight', priority: 'high' })
    expect(recipients).toBe(3)
    const live = await online.next((f) => f.type === 'notification')
    expect(live).toMatchObject({ id, title: 'maintenance', priority: 'high', seq: 1 })
    expect(live).not.toHaveProperty('topic')

    const bobBack = await connect(s, 'bob')
    expect(bobBack.of('notification')).toMatchObject([{ id, title: 'maintenance', seq: 1 }])

    const stranger = await connect(s, 'carol')
    expect(stranger.frames[0]).toMatchObject({ seq: 0, unreadCount: 0 })
    expect(stranger.of('notification')).toEqual([])
    const page = await request(stranger, { type: 'history' }, 'history')
    expect(page.items).toEqual([])
  })
})

describe('ping', () => {
  it('answers pong, echoing the requestId when there is one', async () => {
    const s = await server()
    const a = await connect(s, 'alice')
    const pong = await request(a, { type: 'ping' }, 'pong')
    expect(pong).toEqual({ type: 'pong', requestId: pong.requestId })
    const from = a.frames.length
    a.send({ type: 'ping' })
    expect(await a.next((f) => f.type === 'pong', from)).toEqual({ type: 'pong' })
  })
})

describe('notification fields', () => {
  const data = { orderId: 42, tags: ['a', 'b'], nested: { ok: true, none: null, n: 1.5 }, text: 'ünïcødé ✓' }

  it('round-trips priority and data live, in replay and in history; only a replayed one says replayed', async () => {
    const s = await server()
    const a = await connect(s, 'alice')
    const published = await s.server.sendToUser('alice', { title: 'Order', body: 'shipped', priority: 'high', data })
    const expected = { id: published.id, seq: 1, title: 'Order', body: 'shipped', priority: 'high', data, read: false }

    const live = await a.next((f) => f.type === 'notification')
    expect(live).toMatchObject(expected)
    expect(new Date(live.timestamp as string).toISOString()).toBe(live.timestamp)

    expect(live).not.toHaveProperty('replayed')

    const replay = (await connect(s, 'alice', { since: 0 })).of('notification')[0]
    expect(replay).toEqual({ ...live, replayed: true })

    const page = await request(a, { type: 'history' }, 'history')
    expect(page.items).toEqual([{ ...expected, timestamp: live.timestamp }])
  })

  it('defaults priority to medium and omits data when none was given', async () => {
    const s = await server()
    const a = await connect(s, 'alice')
    await s.server.sendToUser('alice', { title: 'plain', body: '' })
    const n = await a.next((f) => f.type === 'notification')
    expect(n.priority).toBe('medium')
    expect(n).not.toHaveProperty('data')
  })

  it('round-trips priority and data through the HTTP API', async () => {
    const s = await server()
    const a = await connect(s, 'alice')
    const res = await httpPublish(s.url, { userId: 'alice', title: 'via http', body: 'b', priority: 'low', data })
    expect(res.status).toBe(201)
    const n = await a.next((f) => f.type === 'notification')
    expect(n).toMatchObject({ title: 'via http', priority: 'low', data })
  })
})

describe('durability of a publish', () => {
  it('has committed the notification by the time sendToUser resolves', async () => {
    const s = await server()
    const { id, recipients } = await s.server.sendToUser('alice', { title: 'durable', body: 'yes', data: { k: 1 } })
    expect(recipients).toBe(1)
    // A second, independent connection to the file sees it at once.
    const reader = new SqliteStore(s.database)
    try {
      expect(await reader.after('alice', 0, 10)).toMatchObject([{ id, seq: 1, title: 'durable', data: { k: 1 }, read: false }])
    } finally {
      await reader.close()
    }
  })

  it('has committed every inbox entry of a fan-out by the time it resolves', async () => {
    const s = await server()
    const { id, recipients } = await s.server.sendToUsers(['alice', 'bob', 'alice'], { title: 'both', body: '' })
    expect(recipients).toBe(2)
    const reader = new SqliteStore(s.database)
    try {
      for (const user of ['alice', 'bob']) expect(await reader.after(user, 0, 10)).toMatchObject([{ id, seq: 1 }])
    } finally {
      await reader.close()
    }
  })
})
