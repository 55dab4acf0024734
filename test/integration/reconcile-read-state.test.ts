/**
 * Read changes between processes that share a store but no broker: two
 * processes on one SQLite file (a rolling deploy's overlap, each on its own
 * in-process broker), or any process while its broker is down. A publish gets
 * across through the process's reads of the store (every 30 s; every second
 * while its broker is down). A read change made on the other process reaches
 * the user's connections here the same way: the read shows the unread count
 * moved otherwise than the seq did, and they are told the count.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { memoryStorage } from '../../src/index.js'
import { ClientPool, holds } from '../helpers/client.js'
import { FlakyBroker } from '../helpers/flaky-broker.js'
import { startServer, type TestServer } from '../helpers/server.js'

const servers: TestServer[] = []
const clients = new ClientPool()

afterEach(async () => {
  clients.closeAll()
  for (const s of servers.splice(0).reverse()) await s.dispose()
})

/** The old process and its successor on the same file; the successor's broker as given. */
async function overlap(broker?: FlakyBroker): Promise<{ a: TestServer; b: TestServer }> {
  const a = await startServer()
  servers.push(a)
  const b = await startServer({ database: a.database, ...(broker && { broker }) })
  servers.push(b)
  return { a, b }
}

const tab = (s: TestServer) => clients.online({ url: s.wsUrl, token: () => s.token('ann'), storage: memoryStorage() })

describe('a read change made on another process sharing the store, with no broker between them', () => {
  it('reaches the user’s tab here at the next read of the store', async () => {
    const broker = new FlakyBroker()
    const { a, b } = await overlap(broker)
    await a.server.sendToUser('ann', { title: 'one', body: '' })
    await a.server.sendToUser('ann', { title: 'two', body: '' })
    const onB = await tab(b)
    const onA = await tab(a)
    await expect.poll(() => [onA.client.unreadCount, onB.client.unreadCount]).toEqual([2, 2])
    broker.down() // the successor reads the store every second now, as it would every 30 s with its broker up

    await onA.client.markAllRead()
    await expect.poll(() => onB.client.unreadCount, { timeout: 5000 }).toBe(0)
    expect(onB.events.reads.at(-1)).toMatchObject({ unreadCount: 0 })
  })

  it('reaches a tab here when another tab of the user signs in here, before any read of the store', async () => {
    const { a, b } = await overlap() // both brokers up: the next read of the store is 30 s away
    await a.server.sendToUser('ann', { title: 'one', body: '' })
    const first = await tab(b)
    const onA = await tab(a)
    await expect.poll(() => first.client.unreadCount).toBe(1)
    await onA.client.markAllRead()

    // A second tab on the successor: its auth reads the store, where the count moved without the seq.
    const second = await tab(b)
    expect(second.client.unreadCount).toBe(0)
    await expect.poll(() => first.client.unreadCount, { timeout: 5000 }).toBe(0)
  })

  it('a notification from the other process, with nothing read, tells no count: the tab counted it', async () => {
    const broker = new FlakyBroker()
    const { a, b } = await overlap(broker)
    const onB = await tab(b)
    broker.down()
    await a.server.sendToUser('ann', { title: 'one', body: '' })
    await expect.poll(() => onB.events.notifications.length, { timeout: 5000 }).toBe(1)
    await holds(() => {
      expect(onB.client.unreadCount).toBe(1)
      expect(onB.events.reads).toEqual([])
    }, 2500) // two more reads of the store
  })
})
