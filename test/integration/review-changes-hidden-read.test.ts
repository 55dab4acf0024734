/**
 * d6884ce: #tellState takes the state it read as the user's baseline, even for a connection it
 * does not tell (the one that made the change: its reply's count is the change's commit's).
 * A read change made on another process with no broker between them (a rolling deploy's overlap
 * on one SQLite file, or any process while the broker is down) that commits between this
 * process's own change and its read of the state is then in the baseline but was never told to
 * that connection: no later read of the store (reconcile, another tab's auth) sees it as a change.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { memoryStorage } from '../../src/index.js'
import { SqliteStore } from '../../src/server/index.js'
import { ClientPool } from '../helpers/client.js'
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

describe('a read change made on another process while this process reads the state for its own', () => {
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
