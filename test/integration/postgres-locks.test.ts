/**
 * PostgreSQL and a server process that vanishes in the middle of a
 * transaction (power loss, a frozen VM, a partition: no FIN, no RST ever
 * reaches PostgreSQL): the transaction must not stay open holding its users'
 * rows for as long as the TCP connection looks alive (hours without
 * keepalives), failing every other process's publish to those users.
 */
import { randomBytes } from 'node:crypto'
import { type AddressInfo, createServer, type Server, type Socket, connect as tcpConnect } from 'node:net'
import pg from 'pg'
import { expect, it } from 'vitest'
import { PostgresStore } from '../../src/server/index.js'
import { usePostgres, waitingForLock } from '../helpers/postgres.js'
import { authedClient, httpPublish, type RawClient, settle, useServer } from '../helpers/server.js'

const db = usePostgres()

/**
 * A proxy to PostgreSQL whose connection that sends `marker` vanishes right
 * after that message is forwarded: nothing more goes either way, its close
 * included (the machine is gone; PostgreSQL's side of the socket stays open).
 */
async function vanishingProxy(target: number, marker: string): Promise<{ port: number; close(): void }> {
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(target, '127.0.0.1')
    sockets.add(client).add(upstream)
    let gone = false
    client.on('error', () => {})
    upstream.on('error', () => {})
    client.on('data', (chunk: Buffer) => {
      if (gone) return
      upstream.write(chunk)
      if (chunk.toString('latin1').includes(marker)) gone = true
    })
    upstream.on('data', (chunk: Buffer) => {
      if (!gone) client.write(chunk)
    })
    client.on('close', () => {
      if (!gone) upstream.destroy()
    })
    upstream.on('close', () => client.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    close() {
      for (const s of sockets) s.destroy()
      server.close()
    },
  }
}

it('a process that vanishes mid-transaction does not keep its users’ rows locked: other processes publish to them again soon', async () => {
  // Regression: the pool set no idle_in_transaction_session_timeout: the rows stayed locked, every publish to ann failed (503).
  const s = `t_${randomBytes(6).toString('hex')}`
  const healthy = await PostgresStore.open(db.url, { schema: s, queryTimeoutMs: 1000 })
  await healthy.publish({ userIds: ['ann'] }, { title: 'first', body: '' })
  const proxy = await vanishingProxy(db.port, 'FOR UPDATE')
  const doomed = await PostgresStore.open(`postgres://postgres@127.0.0.1:${proxy.port}/postgres`, { schema: s, queryTimeoutMs: 1000 })
  try {
    // Its markRead locks ann's row; then its machine is gone (the store gives up on the reply after 3 s).
    const marking = doomed.markRead('ann', 'all').catch((error: Error) => error)
    await new Promise((r) => setTimeout(r, 500))
    const started = Date.now()
    let outcome = 'never'
    // Another process keeps publishing to ann for 10 s (each attempt fails after queryTimeoutMs while the row is held).
    while (Date.now() - started < 10_000) {
      try {
        await healthy.publish({ userIds: ['ann'] }, { title: 'again', body: '' })
        outcome = `published after ${Date.now() - started} ms`
        break
      } catch (error) {
        outcome = `still failing: ${(error as Error).message}`
      }
    }
    expect(await marking).toBeInstanceOf(Error)
    expect(outcome).toMatch(/^published/)
  } finally {
    proxy.close()
    await doomed.close().catch(() => {})
    await healthy.close()
  }
}, 20_000)

const start = useServer()

// Regression: each of a user's marks took a pooled connection and waited there on the user's row: a dozen sockets'
// marks, within the frame budget (60), took the whole pool (10), and every other user's publish was refused (503).
it('a user’s marks waiting on its own row do not take the pool from another user’s publish: one at a time per user', async () => {
  const schema = `t_${randomBytes(6).toString('hex')}`
  const store = await PostgresStore.open(db.url, { schema, poolSize: 10, connectTimeoutMs: 1000 })
  const s = await start({ store })
  await store.publish({ userIds: ['mallory'] }, { title: 'first', body: '' })
  const bob = await authedClient(s, 'bob')
  const mallory: RawClient[] = []
  for (let i = 0; i < 12; i++) mallory.push(await authedClient(s, 'mallory'))
  // mallory's row held by another transaction (as a long mark of all does), for as long as this test says.
  const holder = new pg.Client({ connectionString: db.url })
  await holder.connect()
  const watcher = new pg.Client({ connectionString: db.url })
  await watcher.connect()
  try {
    await holder.query('BEGIN')
    await holder.query(`SELECT 1 FROM ${schema}.users WHERE id = 'mallory' FOR UPDATE`)
    for (const [i, c] of mallory.entries()) c.send({ type: 'mark_read', all: true, requestId: `m${i}` })
    await waitingForLock(watcher, 'FOR UPDATE') // the first of them waits on the row
    await settle(bob)
    const published = await httpPublish(s.url, { userId: 'bob', title: 'for bob', body: '' })
    expect(published.status).toBe(201)
    await bob.next((f) => f.type === 'notification' && f.title === 'for bob')
  } finally {
    await holder.query('COMMIT').catch(() => {})
    await holder.end()
    await watcher.end()
  }
  // Every mark is answered once the row is free, in the order the sockets sent them: none lost, none refused.
  for (const [i, c] of mallory.entries()) await c.next((f) => f.type === 'read' && f.requestId === `m${i}`)
  for (const c of [bob, ...mallory]) c.close()
}, 60_000)
