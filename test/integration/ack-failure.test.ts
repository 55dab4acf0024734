/**
 * An ack that rides on the heartbeat and fails to be written (a store blip: a
 * PostgreSQL statement timeout, a connection killed) is tried again by the
 * next heartbeat: the acknowledged cursor trails by at most about one
 * interval (docs/protocol.md, "Acks"), not for as long as nothing new is sent.
 * So is a cursor the server took as an ack at auth.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import { SqliteStore } from '../../src/server/index.js'
import { authedClient, httpPublish, type RawClient, startServer, type TestServer } from '../helpers/server.js'

const cleanUp: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const step of cleanUp.splice(0).reverse()) await Promise.resolve(step()).catch(() => {})
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

it('an ack write that fails once is written by a later heartbeat: the acknowledged cursor catches up', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-ack-'))
  cleanUp.push(() => rmSync(dir, { recursive: true, force: true }))
  const store = new SqliteStore(join(dir, 'belfry.db'))
  // The store fails the first ack it is asked to write (as PostgreSQL does for a moment), then works.
  const ack = store.ack.bind(store)
  let failures = 1
  store.ack = (userId, seq) =>
    failures-- > 0 ? Promise.reject(new Error('canceling statement due to statement timeout')) : ack(userId, seq)

  const s: TestServer = await startServer({ store, limits: { heartbeatMs: 100 } })
  cleanUp.push(() => s.dispose())
  const ann: RawClient = await authedClient(s, 'ann')
  cleanUp.push(() => ann.ws.terminate())
  expect((await httpPublish(s.url, { userId: 'ann', title: 'one', body: '' })).status).toBe(201)
  await ann.next((f) => f.type === 'notification' && f.seq === 1)

  // Ten heartbeats: the first one's pong acks seq 1 (its write fails); the store works again from then on.
  await sleep(1000)
  expect(failures).toBeLessThanOrEqual(0) // the failing write happened
  const state = await store.user('ann')
  // ann's socket has had seq 1 for a second: the cursor should be there, not at 0.
  expect(state?.ackedSeq).toBe(1)
})

it('a cursor taken as an ack at auth whose write fails is written by a later heartbeat, with nothing sent since', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-ack-'))
  cleanUp.push(() => rmSync(dir, { recursive: true, force: true }))
  const store = new SqliteStore(join(dir, 'belfry.db'))
  const s: TestServer = await startServer({ store, limits: { heartbeatMs: 100 } })
  cleanUp.push(() => s.dispose())
  for (const title of ['one', 'two']) expect((await httpPublish(s.url, { userId: 'ann', title, body: '' })).status).toBe(201)
  // The store fails the next ack it is asked to write: the cursor's, at auth.
  const ack = store.ack.bind(store)
  let failures = 1
  store.ack = (userId, seq) =>
    failures-- > 0 ? Promise.reject(new Error('canceling statement due to statement timeout')) : ack(userId, seq)
  // The client says it has both (its stored cursor): nothing is sent, the heartbeat's pings carry no seq of their own.
  const ann: RawClient = await authedClient(s, 'ann', { since: 2 })
  cleanUp.push(() => ann.ws.terminate())
  await sleep(1000)
  expect(failures).toBeLessThanOrEqual(0) // the failing write happened
  // A device without a cursor of its own starts from the acknowledged one: it must not be sent both again.
  expect((await store.user('ann'))?.ackedSeq).toBe(2)
})
