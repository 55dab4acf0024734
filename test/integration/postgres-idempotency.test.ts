/**
 * The ambiguous commit on PostgreSQL: the connection is lost after the
 * publish's statement reached PostgreSQL and committed, before the reply
 * reached the server. The server cannot tell whether it committed: it
 * answers 503. A retry with the same Idempotency-Key answers with the id that
 * was stored, and the inbox holds it once; without a key the retry stores a
 * second copy.
 *
 *   server ──Bind "belfry_publish_…"──▶ proxy ──▶ PostgreSQL   commits
 *   server ◀────────── cut ─────────── proxy ◀── … ReadyForQuery
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'
import { PostgresStore } from '../../src/server/index.js'
import { MarkerProxy } from '../helpers/marker-proxy.js'
import { usePostgres } from '../helpers/postgres.js'
import { API_KEY, type TestServer, useServer } from '../helpers/server.js'

/** The end of every reply to a Sync: ReadyForQuery ('Z', length 5) outside a transaction ('I'). */
const READY_FOR_QUERY = Buffer.from([0x5a, 0, 0, 0, 5, 0x49])

/**
 * A TCP proxy to PostgreSQL that, once armed, lets the next client message
 * holding the marker through, withholds PostgreSQL's reply to it, and cuts
 * both sides once that reply is complete (the statement committed).
 */
class CommitCutter extends MarkerProxy {
  /** Connections cut so far. */
  cuts = 0

  constructor(target: number) {
    super(target, (chunk, { client, upstream }) => {
      // The reply is withheld; once it ends, PostgreSQL has committed and waits for the next query.
      if (chunk.subarray(-READY_FOR_QUERY.length).equals(READY_FOR_QUERY)) {
        this.cuts++
        client.destroy()
        upstream.destroy()
      }
    })
  }
}

const db = usePostgres()

describe('PostgreSQL: a publish whose commit reply is lost', () => {
  const start = useServer()
  let cutter: CommitCutter
  let admin: pg.Client
  let schema: string
  afterEach(async () => {
    await cutter?.close()
    await admin?.end()
  })

  /** A server on PostgreSQL through the cutter; alice exists (the publish's statement then runs once). */
  async function setUp(): Promise<TestServer> {
    schema = `t_${randomBytes(6).toString('hex')}`
    cutter = new CommitCutter(db.port)
    const port = await cutter.listen()
    const store = await PostgresStore.open(`postgres://postgres@127.0.0.1:${port}/postgres`, { schema })
    await store.touchUser('alice')
    admin = new pg.Client(db.url)
    await admin.connect()
    return start({ store })
  }

  const publish = async (s: TestServer, headers: Record<string, string> = {}) => {
    const res = await fetch(`${s.url}/api/notifications`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}`, ...headers },
      body: JSON.stringify({ userId: 'alice', title: 'Invoice paid', body: '#1042' }),
    })
    return { status: res.status, replayed: res.headers.get('idempotent-replayed'), json: (await res.json()) as Record<string, unknown> }
  }

  /** Alice's inbox as PostgreSQL holds it, read directly. */
  const inbox = async () =>
    (
      await admin.query(
        `SELECT n.id FROM ${schema}.inbox i JOIN ${schema}.notifications n ON n.no = i.notification_no
         WHERE i.user_no = (SELECT no FROM ${schema}.users WHERE id = 'alice') ORDER BY i.seq`,
      )
    ).rows.map((r) => r.id as string)

  it('answers 503; the retry with the same key answers with the stored id, and the inbox holds it once', async () => {
    const s = await setUp()
    cutter.arm('belfry_publish_')
    const lost = await publish(s, { 'idempotency-key': 'invoice-1042' })
    expect(cutter.cuts).toBe(1)
    expect(lost.status).toBe(503)
    expect(lost.json.message).toMatch(/may or may not have been stored; retry later with the same Idempotency-Key/)
    const stored = await inbox()
    expect(stored).toHaveLength(1) // it did commit
    const retry = await publish(s, { 'idempotency-key': 'invoice-1042' })
    expect(retry).toMatchObject({ status: 201, replayed: 'true', json: { ids: stored, recipients: 1 } })
    expect(await inbox()).toEqual(stored)
  })

  it('without a key, the retry stores the notification a second time', async () => {
    const s = await setUp()
    cutter.arm('belfry_publish_')
    expect((await publish(s)).status).toBe(503)
    expect(cutter.cuts).toBe(1)
    const retry = await publish(s)
    expect(retry.status).toBe(201)
    expect(await inbox()).toHaveLength(2)
  })
})
