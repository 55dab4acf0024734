import { execFileSync } from 'node:child_process'
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
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

/**
 * Blocks every libuv threadpool thread in `open()` of a FIFO that has no writer yet,
 * until the returned function opens the writing ends and lets them go.
 */
function holdThreadpool(): () => Promise<void> {
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4)
  const dir = mkdtempSync(join(tmpdir(), 'belfry-fifo-'))
  const fifos = Array.from({ length: threads }, (_, i) => join(dir, `hold-${i}`))
  for (const fifo of fifos) execFileSync('mkfifo', [fifo])
  const readers = fifos.map((fifo) => open(fifo, 'r'))
  return async () => {
    // Opened on the main thread: each returns as soon as its reader, already waiting, pairs with it.
    const writers = fifos.map((fifo) => openSync(fifo, constants.O_WRONLY))
    for (const reader of await Promise.all(readers)) await reader.close()
    for (const fd of writers) closeSync(fd)
    rmSync(dir, { recursive: true, force: true })
  }
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

  // Token verification (jose → WebCrypto HMAC) runs on libuv's threadpool. Occupying every
  // thread with a blocking FIFO open holds each verification in flight while its socket closes,
  // so the server must notice the close after the verification and leave the registry alone.
  it.skipIf(process.platform === 'win32')('holds nothing after sockets drop while their auth is being verified', async () => {
    const s = await start()
    const token = await s.token('mid-auth')
    const clients = await Promise.all(Array.from({ length: 40 }, () => rawClient(s.wsUrl)))
    const release = holdThreadpool()
    try {
      await Promise.all(
        clients.map(
          (c, i) =>
            new Promise<void>((resolve, reject) => {
              c.ws.send(JSON.stringify({ type: 'auth', token, userId: 'mid-auth' }), (error) => {
                if (error) return reject(error)
                if (i % 2 === 0) c.ws.terminate()
                else c.close()
                resolve()
              })
            }),
        ),
      )
      // The server has read every auth frame (it reads frames before the close) and seen every close.
      await vi.waitFor(() => expect(s.server.stats()).toEqual(EMPTY), { timeout: 5000 })
    } finally {
      await release()
    }
    // Verifications queued first finish first: once a later auth succeeds, the held ones are done.
    const probe = await authedClient(s, 'probe')
    await roundTrip(probe, 'probe')
    await vi.waitFor(() => expect(s.server.stats()).toMatchObject({ users: 1, connections: 1, sockets: 1 }))
    expect(clients.every((c) => c.of('auth_success').length === 0)).toBe(true)
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
