import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { cleanup, connected, createClient, startMockServer, tick } from '../../helpers/mock-server.js'

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

describe('an unsubscribed frame whose topics hold an object with a non-callable toString', () => {
  it('throws nothing out of the socket handler (a malformed frame is reported, or its bad topics skipped)', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server))
    const stop = client.subscribe('a')
    await tick()
    stop()
    await tick()
    expect(server.sent('unsubscribe').at(-1)).toMatchObject({ topics: ['a'] })
    let thrown: unknown
    try {
      // `--#unanswered[t]` takes the object as a property key: ToString throws 'Cannot convert object to primitive value'.
      server.peer.send('{"type":"unsubscribed","topics":[{"toString":1},"a"]}')
      await tick()
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeUndefined()
    expect(uncaught).toEqual([])
  })
})
