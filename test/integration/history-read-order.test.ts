/**
 * A `history` page is read from the store before a read change that reaches the connection while
 * the page is on its way: sent after the change's `read` frame, its `read: false` flags would
 * contradict it, and a list that takes a page's flags as the newer (belfry/react's) shows a read
 * notification unread again. As for `auth_success` and a replay round (docs/protocol.md, "Read
 * state across processes"), the change must come after the page, or the page must agree with it.
 * PostgreSQL: the page's query is held (a proxy withholds its reply) while another socket marks. Regression: the
 * page held no read change back.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { PostgresStore } from '../../src/server/index.js'
import { range } from '../helpers/client.js'
import { MarkerProxy, type Proxied } from '../helpers/marker-proxy.js'
import { usePostgres } from '../helpers/postgres.js'
import { authedClient, httpPublish, useServer } from '../helpers/server.js'

const db = usePostgres()
const start = useServer()
const proxies: MarkerProxy[] = []
afterAll(async () => {
  for (const p of proxies) await p.close()
})

type Item = { id: string; seq: number; read: boolean }

describe('history pages and read changes on one connection (PostgreSQL)', () => {
  it('a read change made while a history page is on its way does not come before a page that contradicts it', async () => {
    const held: { chunk: Buffer; to: Proxied }[] = []
    let holding = true
    const proxy = new MarkerProxy(db.port, (chunk, to) => (holding ? held.push({ chunk, to }) : to.client.write(chunk)))
    proxies.push(proxy)
    const store = await PostgresStore.open(`postgres://postgres@127.0.0.1:${await proxy.listen()}/postgres`, {
      schema: `t_${randomBytes(6).toString('hex')}`,
    })
    const t = await start({ store })
    for (const i of range(1, 3)) expect((await httpPublish(t.url, { userId: 'ann', title: `n${i}`, body: '' })).status).toBe(201)
    const a = await authedClient(t, 'ann')
    const b = await authedClient(t, 'ann')
    const target = a.of('notification').find((n) => n.seq === 3)!.id as string

    // a asks for the newest page; its query's reply is held at the proxy.
    proxy.arm('ORDER BY i.seq DESC')
    a.send({ type: 'history', limit: 10, requestId: 'h' })
    await expect.poll(() => held.length, { timeout: 10_000 }).toBeGreaterThan(0)
    // Meanwhile b marks seq 3 read; the change is told to a's connection.
    b.send({ type: 'mark_read', ids: [target], requestId: 'm' })
    expect(await b.next((f) => f.requestId === 'm')).toMatchObject({ ids: [target], unreadCount: 2 })
    // Give the change time to reach a (it does at once on the current code; held, it would not come).
    await Promise.race([a.next((f) => f.type === 'read'), new Promise((r) => setTimeout(r, 2000))])
    holding = false
    for (const h of held.splice(0)) h.to.client.write(h.chunk)
    const page = (await a.next((f) => f.requestId === 'h')) as { items: Item[] }
    await a.next((f) => f.type === 'read' && (f.ids as string[]).includes(target))

    // What a client holds last about seq 3 must say it is read.
    const frames = a.frames
    const pageAt = frames.findIndex((f) => f.requestId === 'h')
    const readAt = frames.findIndex((f) => f.type === 'read' && (f.ids as string[]).includes(target))
    const flag = page.items.find((n) => n.id === target)!.read
    expect(flag || readAt > pageAt, `the page (frame ${pageAt}) says seq 3 unread, after the read frame naming it (frame ${readAt})`).toBe(
      true,
    )
    a.close()
    b.close()
  })
})
