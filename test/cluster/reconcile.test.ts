/**
 * When the broker says it is back, a process reads the store for what it may
 * have lost — even when a read of the store (the once-a-second one while the
 * broker was down) is still in flight at that moment: that read may have been
 * made before the lost events committed. One process here, in this test
 * process, with a broker whose connection the test takes away and gives back;
 * "another process" is a second PostgresStore on the same schema, publishing
 * while this process hears nothing.
 */
import { randomBytes } from 'node:crypto'
import { pino } from 'pino'
import { afterEach, expect, inject, it } from 'vitest'
import { mintToken, NotificationServer, PostgresStore } from '../../src/server/index.js'
import { FlakyBroker } from '../helpers/flaky-broker.js'
import { rawClient } from '../helpers/server.js'
import { API_KEY, SECRET, until } from './harness.js'

const cleanUp: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const step of cleanUp.splice(0).reverse()) await step()
})

it('reads the store again when the broker is back while a read made before the loss is still in flight', async () => {
  const { pgUrl } = inject('cluster')
  const schema = `r_${randomBytes(5).toString('hex')}`
  const store = await PostgresStore.open(pgUrl, { schema, poolSize: 2 })
  const other = await PostgresStore.open(pgUrl, { schema, poolSize: 1 })
  cleanUp.push(() => other.close())

  // The process's reads of the latest seqs, held at the test's will once it has read.
  let hold: { read: () => void; release: Promise<void> } | undefined
  const latestSeqs = store.latestSeqs.bind(store)
  store.latestSeqs = async (userIds) => {
    const seqs = await latestSeqs(userIds)
    const held = hold
    hold = undefined
    if (held) {
      held.read()
      await held.release
    }
    return seqs
  }

  const broker = new FlakyBroker()
  const server = new NotificationServer({ secret: SECRET, apiKey: API_KEY, store, broker, logger: pino({ level: 'silent' }) })
  cleanUp.push(() => server.close())
  const { port } = await server.listen(0, '127.0.0.1')
  const ann = await rawClient(`ws://127.0.0.1:${port}/ws`)
  cleanUp.push(() => ann.close())
  ann.send({ type: 'auth', token: await mintToken(SECRET, 'ann'), since: 0 })
  await ann.next((f) => f.type === 'replayed' && f.more === false)
  await server.sendToUser('ann', { title: 'one', body: '' })
  await ann.next((f) => f.type === 'notification' && f.seq === 1)

  // The broker is lost; the once-a-second read of the store while it is down reads, and is held.
  let release = () => {}
  const read = new Promise<void>((resolve) => {
    hold = { read: resolve, release: new Promise<void>((r) => (release = r)) }
  })
  broker.down()
  await read
  // Meanwhile another process publishes to ann: this one hears nothing of it.
  await other.publish({ userIds: ['ann'] }, { title: 'two', body: '' })
  // The broker is back, with the held read still in flight; then that read ends, with what it read before.
  broker.back()
  release()
  await until(() => ann.of('notification').some((f) => f.seq === 2), 10_000, 'ann gets what was published while the broker was down')
  expect(ann.of('notification').map((f) => [f.seq, f.title])).toEqual([
    [1, 'one'],
    [2, 'two'],
  ])
})
