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
import { SqliteStore } from '../../src/server/index.js'
import { ClientPool, holds } from '../helpers/client.js'
import { FlakyBroker } from '../helpers/flaky-broker.js'
import { startServer, type TestServer } from '../helpers/server.js'

const servers: TestServer[] = []
const stores: SqliteStore[] = []
const clients = new ClientPool()

afterEach(async () => {
  clients.closeAll()
  for (const s of servers.splice(0).reverse()) await s.dispose()
  for (const s of stores.splice(0)) await s.close()
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

/** A SqliteStore whose next read of a user's state first runs `before` (what commits in the meantime elsewhere). */
class HookedStore extends SqliteStore {
  before: (() => Promise<void>) | undefined
  override async user(userId: string) {
    const before = this.before
    this.before = undefined
    if (before) await before()
    return super.user(userId)
  }
}

describe('a read change made on another process while this process reads the state after its own', () => {
  it('reaches the tab that made the own change (at the next read of the store, or another tab’s auth)', async () => {
    const first = await startServer()
    servers.push(first)
    const store = new HookedStore(first.database)
    const broker = new FlakyBroker()
    // This process: its broker is down, so its own read changes come back through a read of the state.
    const here = await startServer({ database: first.database, store, broker })
    servers.push(here)
    // The other process on the same file (its own in-process broker: nothing of its reaches here but the store).
    const other = new SqliteStore(first.database)
    stores.push(other)

    await here.server.sendToUser('ann', { title: 'one', body: '' })
    await here.server.sendToUser('ann', { title: 'two', body: '' })
    const tab = await clients.online({ url: here.wsUrl, token: () => here.token('ann'), storage: memoryStorage() })
    await expect.poll(() => tab.events.notifications.length).toBe(2)
    const [one, two] = tab.events.notifications.map((n) => n.id)
    expect(tab.client.unreadCount).toBe(2)
    broker.down() // reads the store every second from now on

    // The other process marks 'one' read just after this one committed its mark of 'two'.
    store.before = async () => {
      await other.markRead('ann', [one!])
    }
    await tab.client.markRead([two!])
    expect((await other.user('ann'))!.unreadCount).toBe(0)

    // Several reads of the store (one a second while the broker is down), and a second tab's auth.
    const second = await clients.online({ url: here.wsUrl, token: () => here.token('ann'), storage: memoryStorage() })
    expect(second.client.unreadCount).toBe(0)
    await expect.poll(() => tab.client.unreadCount, { timeout: 4000 }).toBe(0)
  })
})
