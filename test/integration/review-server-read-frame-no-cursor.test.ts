import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { memoryStorage } from '../../src/index.js'
import { ClientPool } from '../helpers/client.js'
import { authedClient, type RawClient, startServer, type TestServer } from '../helpers/server.js'

let t: TestServer | undefined
const raws: RawClient[] = []
const pool = new ClientPool()

afterEach(async () => {
  pool.closeAll()
  for (const c of raws.splice(0)) c.close()
  await t?.dispose()
  t = undefined
})

describe('review: the "none unread" read frame after auth_success', () => {
  it('reaches a client back from offline whose cursor is still 0 (it shows history pages, but no notification came to it yet)', async () => {
    t = await startServer()
    const s = t
    await s.server.sendToUser('ann', { title: 'n1', body: '' })
    await s.server.sendToUser('ann', { title: 'n2', body: '' })
    // The phone has both (its cursor acks them): a new page starts after the acked cursor and is handed nothing.
    const phone = await authedClient(s, 'ann', { since: 2 })
    raws.push(phone)

    // The laptop's page: a fresh profile (no cursor stored for ann), its sockets tracked, its token provider gated.
    const sockets: WebSocket[] = []
    class Tracked extends WebSocket {
      constructor(...args: ConstructorParameters<typeof WebSocket>) {
        super(...args)
        sockets.push(this)
      }
    }
    let gate: Promise<void> = Promise.resolve()
    let open = () => {}
    const { client, events } = await pool.online({
      url: s.wsUrl,
      WebSocket: Tracked as unknown as typeof WebSocket,
      storage: memoryStorage(),
      token: async () => {
        await gate
        return s.token('ann')
      },
    })
    expect(events.notifications).toEqual([]) // nothing handed over: the cursor stays 0
    // The app shows the inbox, as README's paging idiom / belfry/react's loadMore() do: both unread.
    const page = await client.history()
    expect(page.items.map((n) => [n.seq, n.read])).toEqual([
      [2, false],
      [1, false],
    ])

    // The laptop loses its connection; while it is away the user reads everything on the phone.
    gate = new Promise((resolve) => {
      open = resolve
    })
    sockets.at(-1)!.terminate()
    await expect.poll(() => client.state).not.toBe('online')
    const requestId = 'r-all'
    phone.send({ type: 'mark_read', all: true, requestId })
    expect(await phone.next((f) => f.requestId === requestId)).toMatchObject({ type: 'read', all: true, seq: 2, unreadCount: 0 })

    // Back online: README says of belfry/react's list "a client back from offline is told so when none is unread".
    open()
    await expect.poll(() => client.state).toBe('online')
    expect(client.unreadCount).toBe(0) // the badge says 0 ...
    // ... and the list must be told that what it shows (seq 1 and 2) is read.
    await expect
      .poll(
        () => events.reads.some((r) => (r.all && r.seq >= 2) || (r.ids.includes(page.items[0]!.id) && r.ids.includes(page.items[1]!.id))),
        {
          timeout: 2000,
        },
      )
      .toBe(true)
  })
})
