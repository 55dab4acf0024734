/**
 * PostgreSQL and a server process that vanishes in the middle of a
 * transaction (power loss, a frozen VM, a partition: no FIN, no RST ever
 * reaches PostgreSQL): the transaction must not stay open holding its users'
 * rows for as long as the TCP connection looks alive (hours without
 * keepalives), failing every other process's publish to those users.
 */
import { randomBytes } from 'node:crypto'
import { type AddressInfo, createServer, type Server, type Socket, connect as tcpConnect } from 'node:net'
import { expect, it } from 'vitest'
import { PostgresStore } from '../../src/server/index.js'
import { usePostgres } from '../helpers/postgres.js'

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
