/**
 * Review: the read of the store a process makes when its broker is back (for
 * the events lost while it was away) fails, e.g. a PostgreSQL blip at that
 * moment. The log says "reconcile failed; retrying on the next sweep", but
 * #reconcile stamped #reconciledAt when it began, and with the broker up the
 * upkeep reads again only 30 s after that: what was lost waits 30 s, not a
 * second.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, expect, it } from 'vitest'
import type { Broker, BrokerEvent } from '../../src/server/index.js'
import { mintToken, NotificationServer, SqliteStore } from '../../src/server/index.js'
import { rawClient } from '../helpers/server.js'

const SECRET = 'reconcile-secret-0123456789abcdef'

/** An in-process broker whose connection the test takes away (`down()`) and gives back (`back()`). */
class FlakyBroker implements Broker {
  up = true
  readonly #handlers = new Set<(event: BrokerEvent) => void>()
  readonly #status = new Set<(up: boolean) => void>()
  publish(events: readonly BrokerEvent[]): void {
    if (!this.up) throw new Error('broker down')
    for (const event of events) for (const handler of this.#handlers) handler(event)
  }
  subscribe(handler: (event: BrokerEvent) => void): () => void {
    this.#handlers.add(handler)
    return () => this.#handlers.delete(handler)
  }
  async ready(): Promise<void> {}
  onStatus(handler: (up: boolean) => void): () => void {
    this.#status.add(handler)
    return () => this.#status.delete(handler)
  }
  close(): void {}
  down(): void {
    this.up = false
    for (const handler of this.#status) handler(false)
  }
  back(): void {
    this.up = true
    for (const handler of this.#status) handler(true)
  }
}

const cleanUp: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const step of cleanUp.splice(0).reverse()) await Promise.resolve(step()).catch(() => {})
})
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

it('a reconcile that fails when the broker is back is tried again at the next sweep, not 30 s later', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-reconcile-'))
  cleanUp.push(() => rmSync(dir, { recursive: true, force: true }))
  const store = new SqliteStore(join(dir, 'belfry.db'))
  // "Another process" on the same store: it publishes, and this process's broker does not hear of it.
  const other = new SqliteStore(join(dir, 'belfry.db'))
  cleanUp.push(() => other.close())
  let failing = false
  const latestSeqs = store.latestSeqs.bind(store)
  store.latestSeqs = (userIds) => (failing ? Promise.reject(new Error('the database is unavailable')) : latestSeqs(userIds))

  const broker = new FlakyBroker()
  const server = new NotificationServer({ secret: SECRET, store, broker, logger: pino({ level: 'silent' }) })
  cleanUp.push(() => server.close())
  const { port } = await server.listen(0, '127.0.0.1')
  const ann = await rawClient(`ws://127.0.0.1:${port}/ws`)
  cleanUp.push(() => ann.close())
  ann.send({ type: 'auth', token: await mintToken(SECRET, 'ann'), since: 0 })
  await ann.next((f) => f.type === 'replayed' && f.more === false)

  // The broker is lost; meanwhile another process publishes to ann. The broker comes back while the
  // store has a blip: the read made for what the broker lost fails. The store is fine a moment later.
  failing = true
  broker.down()
  await other.publish({ userIds: ['ann'] }, { title: 'lost by the broker', body: '' })
  broker.back()
  await sleep(100)
  failing = false

  // Next sweeps (once a second) should read again: ann gets it within a few seconds.
  await sleep(3000)
  expect(ann.of('notification').map((f) => f.title)).toEqual(['lost by the broker'])
})
