import { EventEmitter } from 'node:events'
import { pino } from 'pino'
import { describe, expect, it, vi } from 'vitest'
import { mintToken, tokenVerifier } from '../../src/server/auth.js'
import { InProcessBroker } from '../../src/server/broker/broker.js'
import { Budgets } from '../../src/server/budget.js'
import { Connection } from '../../src/server/connection/connection.js'
import type { Hub } from '../../src/server/hub.js'
import { DEFAULT_LIMITS } from '../../src/server/options.js'
import { Registry } from '../../src/server/registry.js'
import { SqliteStore } from '../../src/server/store/sqlite.js'

const SECRET = 'test-secret-0123456789abcdef'

/** A socket whose send buffer fills past any bound after `fullAfter` sends: a client that stopped reading. */
class StalledSocket extends EventEmitter {
  readyState = 1
  sent = 0
  closes: [number, string][] = []
  constructor(private readonly fullAfter: number) {
    super()
  }
  get bufferedAmount(): number {
    return this.sent >= this.fullAfter ? 10 * 1024 * 1024 : 0
  }
  send(): void {
    this.sent++
  }
  close(code: number, reason: string): void {
    this.closes.push([code, reason])
    this.readyState = 2
  }
  terminate(): void {
    this.readyState = 3
  }
  pings: string[] = []
  ping(data = ''): void {
    this.pings.push(data)
  }
  frame(f: object): void {
    this.emit('message', Buffer.from(JSON.stringify(f)), false)
  }
}

const makeHub = (store = new SqliteStore(':memory:'), broker = new InProcessBroker()): Hub => ({
  store,
  broker,
  announce: async (event) => broker.publish([event]),
  refreshReadState: () => {},
  sawUserState: () => {},
  registry: new Registry(),
  connections: new Set(),
  unauthenticated: new Set(),
  limits: DEFAULT_LIMITS,
  budgets: new Budgets(DEFAULT_LIMITS),
  authorizeSubscribe: undefined,
  verify: tokenVerifier(SECRET),
  log: pino({ level: 'silent' }),
})

describe('Connection', () => {
  it('owns its heartbeat: pings on each sweep, and terminates a socket that missed the last ping', () => {
    const hub = makeHub()
    const ws = new StalledSocket(Number.POSITIVE_INFINITY)
    const c = new Connection(ws as never, hub)
    c.heartbeat()
    expect(ws.pings).toEqual([''])
    ws.emit('pong', Buffer.alloc(0))
    c.heartbeat()
    expect(ws.pings).toEqual(['', ''])
    expect(ws.readyState).toBe(1)
    c.heartbeat() // no pong since the last ping
    expect(ws.readyState).toBe(3)
  })

  it('changes phase through one setter: leaving authenticating frees its slot, closed is final', async () => {
    const hub = makeHub()
    const ws = new StalledSocket(Number.POSITIVE_INFINITY)
    const c = new Connection(ws as never, hub)
    expect(hub.unauthenticated.has(c)).toBe(true)
    c.signIn('u', Number.POSITIVE_INFINITY, false)
    expect(c.phase).toBe('replaying')
    expect(hub.unauthenticated.has(c)).toBe(false)
    expect(hub.registry.count('u')).toBe(1)
    c.moveTo('closed')
    expect(hub.registry.count('u')).toBe(0)
    c.moveTo('live')
    expect(c.phase).toBe('closed')
    await hub.store.close()
  })

  it('stays closed when it is cut off as a slow consumer in the middle of a replay round', async () => {
    const store = new SqliteStore(':memory:')
    for (let i = 0; i < 10; i++) await store.publish({ userIds: ['u'] }, { title: `n${i}`, body: '' })
    const hub = makeHub(store)
    const ws = new StalledSocket(3)
    const c = new Connection(ws as never, hub)
    ws.frame({ type: 'auth', token: await mintToken(SECRET, 'u') })
    await vi.waitFor(() => expect(ws.closes).toEqual([[4009, 'slow consumer']]))
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(c.phase).toBe('closed')
    expect(hub.registry.count('u')).toBe(0)
    // A frame still arriving on the closing socket is not acted on.
    ws.frame({ type: 'mark_read', all: true, requestId: 'late' })
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect((await store.touchUser('u')).unreadCount).toBe(10)
    await store.close()
  })

  it('asks for the user’s count again after it let held read frames go, and only then', async () => {
    const refreshed: string[] = []
    const hub = { ...makeHub(), refreshReadState: (userId: string) => void refreshed.push(userId) }
    const ws = new StalledSocket(Number.POSITIVE_INFINITY)
    const c = new Connection(ws as never, hub)
    c.signIn('u', Number.POSITIVE_INFINITY, false)
    // Held until auth_success has gone out: then sent, and the count is asked for.
    c.tell('{"type":"read"}')
    expect(ws.sent).toBe(0)
    c.greeted()
    expect([ws.sent, refreshed]).toEqual([1, ['u']])
    // A round that held nothing asks for nothing.
    c.hold()
    c.release()
    expect(refreshed).toEqual(['u'])
    // Nested holds: only the last release lets it go.
    c.hold()
    c.hold()
    c.tell('{"type":"read"}')
    c.release()
    expect([ws.sent, refreshed]).toEqual([1, ['u']])
    c.release()
    expect([ws.sent, refreshed]).toEqual([2, ['u', 'u']])
    // Closed meanwhile: nothing to put right.
    c.hold()
    c.tell('{"type":"read"}')
    c.close(1000, 'bye')
    c.release()
    expect(refreshed).toEqual(['u', 'u'])
    await hub.store.close()
  })
})
