import { Session } from 'node:inspector/promises'
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { NotificationClient } from '../../../src/index.js'
import { cleanup, connected, createClient, type Frame, startMockServer, tick } from '../../helpers/mock-server.js'

/**
 * What a client keeps per topic must not outlive the topic: a page open for days, online all along,
 * that follows a topic per document, room or ticket the user opens and gives it up as the user moves
 * on (`subscribe()` and the function it returns) keeps nothing of the topics given up and answered.
 * The client's maps are private fields; the test reads their sizes through the inspector protocol.
 */
beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

const session = new Session()
session.connect()
afterAll(() => session.disconnect())

/** What the inspector protocol says of a value, and of an object's properties (Runtime.getProperties). */
interface Remote {
  objectId?: string
  subtype?: string
  description?: string
}
interface Properties {
  result: { name: string; value?: Remote }[]
  internalProperties?: { name: string; value?: Remote }[]
  privateProperties?: { name: string; value?: Remote }[]
}
const evaluate = (expression: string) => session.post('Runtime.evaluate', { expression }) as Promise<{ result: Remote }>
const properties = (objectId: string) => session.post('Runtime.getProperties', { objectId, ownProperties: true }) as Promise<Properties>

/** The own keys (an object) or the entries' previews (a Map or Set) of the client's private field `name`. */
async function keysOf(client: NotificationClient, name: string): Promise<string[]> {
  const g = globalThis as Record<string, unknown>
  g.__belfryProbe = client
  const { result } = await evaluate('globalThis.__belfryProbe')
  delete g.__belfryProbe
  const own = await properties(result.objectId!)
  const field = own.privateProperties?.find((p) => p.name === name)?.value
  if (!field?.objectId) throw new Error(`no private field ${name}`)
  if (field.subtype === 'map' || field.subtype === 'set') {
    const { internalProperties } = await properties(field.objectId)
    const entries = internalProperties?.find((p) => p.name === '[[Entries]]')?.value?.objectId
    const list = entries ? await properties(entries) : undefined
    return (list?.result ?? []).filter((p) => /^\d+$/.test(p.name)).map((p) => p.value?.description ?? '')
  }
  const props = await properties(field.objectId)
  return props.result.map((p) => p.name)
}

describe('a client online for long, following topics one after another', () => {
  it('keeps nothing of 2,000 topics taken, given up and answered', async () => {
    const server = startMockServer()
    const { client } = await connected(createClient(server))
    // The server answers every unsubscribe as belfry's does.
    let answered = 0
    for (let i = 0; i < 2000; i++) {
      const leave = client.subscribe(`doc:${i}`)
      await tick(5)
      leave()
      await tick(5)
      const frames = server.sent('unsubscribe') as (Frame & { topics: string[] })[]
      for (const f of frames.slice(answered)) server.peer.send({ type: 'unsubscribed', topics: f.topics })
      answered = frames.length
      await tick(5)
    }
    await tick()
    expect(client.state).toBe('online')
    expect(server.peers).toHaveLength(1)
    expect([await keysOf(client, '#topics'), await keysOf(client, '#leaving')]).toEqual([[], []])
    // Per topic, the unsubscribe frames not yet answered: none is left, so no topic has an entry.
    const kept = (await keysOf(client, '#unanswered')).filter((k) => k.startsWith('doc:'))
    expect(kept.length).toBe(0)
  }, 60_000)
})
