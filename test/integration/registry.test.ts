import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import { SqliteStore } from '../../src/server/index.js'
import { authedClient, type RawClient, rawClient, startServer, type TestServer } from '../helpers/server.js'

let t: TestServer | undefined

/** Starts a server that afterEach disposes. */
async function start(options?: Parameters<typeof startServer>[0]): Promise<TestServer> {
  t = await startServer(options)
  return t
}

afterEach(async () => {
  await t?.dispose()
  t = undefined
})

const EMPTY = { users: 0, connections: 0, sockets: 0, unauthenticated: 0 }

/** How one connection of the churn test ends. */
type Fate = 'auth+close' | 'auth+terminate' | 'no-auth+close' | 'no-auth+terminate'

/** Half authenticate then close, a quarter authenticate then terminate, a quarter never authenticate. */
function fateOf(i: number): Fate {
  switch (i % 8) {
    case 0:
    case 1:
    case 2:
    case 3:
      return 'auth+close'
    case 4:
    case 5:
      return 'auth+terminate'
    case 6:
      return 'no-auth+close'
    default:
      return 'no-auth+terminate'
  }
}

/** A ping/pong round trip: every frame the server sent before the pong has arrived. */
async function roundTrip(c: RawClient, requestId: string): Promise<void> {
  c.send({ type: 'ping', requestId })
  await c.next((f) => f.type === 'pong' && f.requestId === requestId)
}

describe('connection registry', () => {
  it('holds nothing after 1,000 connections were opened and dropped in every way', async () => {
    const s = await start()
    const TOTAL = 1000
    const BATCH = 50
    const USERS = 20
    const tokens = await Promise.all(Array.from({ length: USERS }, (_, u) => s.token(`churn-${u}`)))
    const fates: Record<Fate, number> = { 'auth+close': 0, 'auth+terminate': 0, 'no-auth+close': 0, 'no-auth+terminate': 0 }
    let authenticated = 0

    const one = async (i: number): Promise<void> => {
      const fate = fateOf(i)
      const c = await rawClient(s.wsUrl)
      if (fate.startsWith('auth')) {
        const userId = `churn-${i % USERS}`
        c.send({ type: 'auth', token: tokens[i % USERS], userId })
        await c.next((f) => f.type === 'replayed' && f.more === false)
        if (c.of('auth_success').length === 1) authenticated += 1
      }
      if (fate.endsWith('terminate')) c.ws.terminate()
      else c.close()
      fates[fate] += 1
    }

    for (let start = 0; start < TOTAL; start += BATCH) {
      await Promise.all(Array.from({ length: BATCH }, (_, k) => one(start + k)))
    }

    expect(fates).toEqual({ 'auth+close': 500, 'auth+terminate': 250, 'no-auth+close': 125, 'no-auth+terminate': 125 })
    expect(authenticated).toBe(750)
    await vi.waitFor(() => expect(s.server.stats()).toEqual(EMPTY), { timeout: 5000 })

    // The server is still in working order and counts from zero.
    const c = await authedClient(s, 'after-churn')
    expect(s.server.stats()).toMatchObject({ users: 1, connections: 1, sockets: 1 })
    c.close()
    await vi.waitFor(() => expect(s.server.stats()).toEqual(EMPTY))
  })

  // The store's look-up of the user is the auth's one wait (the token check is synchronous). Holding
  // it keeps each auth in flight while its socket closes, so the server must notice the close after
  // the look-up and leave the registry alone.
  it('holds nothing after sockets drop while their auth waits on the store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-held-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const store = new SqliteStore(join(dir, 'belfry.db'))
    const touchUser = store.touchUser.bind(store)
    let release!: () => void
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    let waiting = 0
    store.touchUser = async (userId) => {
      waiting++
      await held
      return touchUser(userId)
    }
    // The cap counts a connection from its sign-in, its auth still reading the store: one left behind would take a place.
    const s = await start({ store, limits: { maxConnectionsPerUser: 40 } })
    const token = await s.token('mid-auth')
    const clients = await Promise.all(Array.from({ length: 40 }, () => rawClient(s.wsUrl)))
    for (const c of clients) c.send({ type: 'auth', token, userId: 'mid-auth' })
    await vi.waitFor(() => expect(waiting).toBe(40), { timeout: 5000 })
    // Signed in, each waiting on the store (not authenticated yet: open sockets only): now the sockets go.
    expect(s.server.stats()).toMatchObject({ users: 0, connections: 0, sockets: 40 })
    for (const [i, c] of clients.entries()) {
      if (i % 2 === 0) c.ws.terminate()
      else c.close()
    }
    await vi.waitFor(() => expect(s.server.stats()).toEqual(EMPTY), { timeout: 5000 })
    release()
    const probe = await authedClient(s, 'probe')
    await roundTrip(probe, 'probe')
    await vi.waitFor(() => expect(s.server.stats()).toMatchObject({ users: 1, connections: 1, sockets: 1 }))
    expect(clients.every((c) => c.of('auth_success').length === 0)).toBe(true)
    // None holds a place under the user's cap: all 40 places are free.
    const again = await Promise.all(Array.from({ length: 40 }, () => authedClient(s, 'mid-auth')))
    expect(s.server.stats()).toMatchObject({ users: 2, connections: 41 })
    for (const c of again) c.close()
  })

  it("delivers one notification exactly once to each of a user's 5 connections", async () => {
    const s = await start()
    const tabs = await Promise.all(Array.from({ length: 5 }, () => authedClient(s, 'multi')))
    expect(s.server.stats()).toMatchObject({ users: 1, connections: 5, sockets: 5 })
    const other = await authedClient(s, 'someone-else')

    const { id, recipients } = await s.server.sendToUser('multi', { title: 'to every tab', body: '' })
    expect(recipients).toBe(1)
    for (const [i, tab] of tabs.entries()) {
      await tab.next((f) => f.type === 'notification')
      // Anything sent twice would have arrived before the pong.
      await roundTrip(tab, `after-${i}`)
      expect(tab.of('notification')).toEqual([expect.objectContaining({ id, seq: 1, title: 'to every tab' })])
    }
    await roundTrip(other, 'other')
    expect(other.of('notification')).toEqual([])

    for (const c of [...tabs, other]) c.close()
    await vi.waitFor(() => expect(s.server.stats()).toEqual(EMPTY))
  })
})
