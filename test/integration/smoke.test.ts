import { afterEach, describe, expect, it } from 'vitest'
import { authedClient, httpPublish, rawClient, startServer, type TestServer } from '../helpers/server.js'

let t: TestServer
afterEach(() => t?.dispose())

describe('server smoke', () => {
  it('authenticates, delivers live, replays after reconnect', async () => {
    t = await startServer()
    const a = await authedClient(t, 'alice')
    const res = await httpPublish(t.url, { userId: 'alice', title: 'Hi', body: 'there' })
    expect(res.status).toBe(201)
    const n = await a.next((f) => f.type === 'notification')
    expect(n).toMatchObject({ title: 'Hi', body: 'there', seq: 1, read: false, priority: 'medium' })
    a.close()
    await t.server.sendToUser('alice', { title: 'Second', body: '' })
    const b = await rawClient(t.wsUrl)
    b.send({ type: 'auth', token: await t.token('alice'), since: 1 })
    const replayed = await b.next((f) => f.type === 'notification')
    expect(replayed).toMatchObject({ title: 'Second', seq: 2 })
    b.close()
  })
})
