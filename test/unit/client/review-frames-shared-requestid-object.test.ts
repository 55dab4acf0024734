import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { sharedConnection } from '../../../src/shared/index.js'
import { FakeLocks } from '../../helpers/locks.js'
import { cleanup, createClient, note, startMockServer, tick } from '../../helpers/mock-server.js'

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

describe('belfry/shared leader: a frame whose requestId is an object with a non-callable toString', () => {
  it('throws nothing, and the notification reaches the app (the next one does not skip it)', async () => {
    const server = startMockServer()
    const { client, log } = createClient(server, {
      connection: sharedConnection({
        locks: new FakeLocks().forTab('a'),
        BroadcastChannel: LonelyChannel as unknown as typeof BroadcastChannel,
      }),
    })
    client.connect()
    await tick(100)
    expect(client.state).toBe('online')
    let thrown: unknown
    try {
      server.peer.send({ ...note(1), requestId: { toString: 1 } })
      await tick()
    } catch (e) {
      thrown = e
    }
    server.peer.send(note(2))
    await tick()
    // relay() moves its cursor, then `${f.requestId}` throws 'Cannot convert object to primitive value' before
    // host.frame: seq 1 never reaches the client, and seq 2 moves the client's cursor past it.
    expect(thrown).toBeUndefined()
    expect(uncaught).toEqual([])
    expect(log.notifications.map((n) => n.seq)).toEqual([1, 2])
  })
})
