import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { sharedConnection } from '../../../src/shared/index.js'
import { FakeLocks } from '../../helpers/locks.js'
import { cleanup, connected, createClient, note, startMockServer, tick } from '../../helpers/mock-server.js'

/** A BroadcastChannel for one tab alone: nobody else hears it. */
class LonelyChannel {
  onmessage: ((e: MessageEvent) => void) | null = null
  constructor(readonly name: string) {}
  postMessage(_m: unknown): void {}
  close(): void {}
}

const uncaught: unknown[] = []
const onUncaught = (e: unknown) => uncaught.push(e)

beforeEach(() => {
  vi.useFakeTimers()
  uncaught.length = 0
  process.on('uncaughtException', onUncaught)
})
afterEach(() => {
  process.off('uncaughtException', onUncaught)
  cleanup()
})

const shared = () =>
  sharedConnection({ locks: new FakeLocks().forTab('a'), BroadcastChannel: LonelyChannel as unknown as typeof BroadcastChannel })

describe('a server whose frames carry a requestId the client never sent', () => {
  it('solo: a notification with an unknown requestId still reaches the app', async () => {
    const server = startMockServer()
    const { log } = await connected(createClient(server))
    server.peer.send({ ...note(1), requestId: 'zz' })
    await tick()
    expect(log.notifications.map((n) => n.seq)).toEqual([1])
  })

  it('shared (the leader tab): a notification with an unknown requestId still reaches the app', async () => {
    const server = startMockServer()
    const { client, log } = createClient(server, { connection: shared() })
    client.connect()
    await tick(100)
    expect(client.state).toBe('online')
    server.peer.send({ ...note(1), requestId: 'zz' })
    server.peer.send({ ...note(2), requestId: 'x:1' }) // the form of a tab's id, for no tab
    server.peer.send(note(3))
    await tick()
    // Routed as a reply to another tab, a notification would go nowhere, and the next would move the cursor past it.
    expect(log.notifications.map((n) => n.seq)).toEqual([1, 2, 3])
  })

  it('shared (the leader tab): a frame whose requestId is not a string throws nothing and is handled as a frame without one', async () => {
    const server = startMockServer()
    const { client, log } = createClient(server, { connection: shared() })
    client.connect()
    await tick(100)
    expect(client.state).toBe('online')
    let thrown: unknown
    try {
      server.peer.send({ type: 'read', ids: [], all: true, seq: 0, unreadCount: 0, requestId: 5 })
      await tick()
    } catch (e) {
      thrown = e
    }
    // relay() calls requestId.split(':'): a TypeError out of the socket's message listener.
    expect(thrown).toBeUndefined()
    expect(uncaught).toEqual([])
    expect(log.reads).toHaveLength(1)
  })
})
