/**
 * `Idempotency-Key` on `POST /api/notifications`: a retry with the key of a
 * publish gets that publish's answer and stores nothing; the key of another
 * request is refused (422); a malformed key is refused (400); without the
 * header nothing changes. The ambiguous commit on PostgreSQL (a connection
 * lost while the commit is in flight) is in postgres-idempotency.test.ts;
 * here a store that loses its reply after committing stands in for it.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { Audience, IdempotencyKey, NotificationInput, Published } from '../../src/server/index.js'
import { SqliteStore } from '../../src/server/index.js'
import { API_KEY, authedClient, type TestServer, useServer } from '../helpers/server.js'

const start = useServer()

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  json: Record<string, unknown>
}

/** POSTs a publish with node:http, which sends any header (a repeated one included). */
function publish(s: TestServer, body: unknown, headers: Record<string, string | string[]> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: s.port,
        method: 'POST',
        path: '/api/notifications',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}`, ...headers },
      },
      (res) => {
        let text = ''
        res.on('data', (d: Buffer) => {
          text += d.toString()
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, json: JSON.parse(text) }))
      },
    )
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
}

/** The user's latest seq: how many inbox entries publishes gave it (0: none). */
async function latestSeq(s: TestServer, userId: string): Promise<number> {
  const res = await fetch(`${s.url}/api/admin/users/${userId}`, { headers: { authorization: `Bearer ${API_KEY}` } })
  return res.status === 404 ? 0 : ((await res.json()) as { latestSeq: number }).latestSeq
}

const hello = { userId: 'alice', title: 'Hello', body: 'World' }

describe('POST /api/notifications with an Idempotency-Key', () => {
  it('without the header: every publish is new, and no replay header', async () => {
    const s = await start()
    const first = await publish(s, hello)
    const second = await publish(s, hello)
    expect([first.status, second.status]).toEqual([201, 201])
    expect(first.json.ids).not.toEqual(second.json.ids)
    expect(first.headers['idempotent-replayed']).toBeUndefined()
    expect(await latestSeq(s, 'alice')).toBe(2)
  })

  it('a retry with the key gets the first answer, 201 again with Idempotent-Replayed: true, and stores nothing', async () => {
    const s = await start()
    const key = { 'idempotency-key': '"8e03978e-40d5-43e8-bc93-6894a57f9324"' }
    const first = await publish(s, hello, key)
    expect(first).toMatchObject({ status: 201, json: { ids: [expect.any(String)], recipients: 1 } })
    expect(first.headers['idempotent-replayed']).toBeUndefined()
    const again = await publish(s, hello, key)
    expect(again).toMatchObject({ status: 201, json: first.json })
    expect(again.headers['idempotent-replayed']).toBe('true')
    expect(await latestSeq(s, 'alice')).toBe(1)
    // Another key is another publish.
    expect((await publish(s, hello, { 'idempotency-key': 'other' })).json.ids).not.toEqual(first.json.ids)
    expect(await latestSeq(s, 'alice')).toBe(2)
  })

  it('422 for a key used for a different request, which stores nothing', async () => {
    const s = await start()
    await publish(s, hello, { 'idempotency-key': 'k' })
    const other = await publish(s, { ...hello, body: 'Changed' }, { 'idempotency-key': 'k' })
    expect(other).toMatchObject({ status: 422, json: { error: 'idempotency_key_reused' } })
    expect(other.json.message).toMatch(/used for a different request/)
    expect(await latestSeq(s, 'alice')).toBe(1)
  })

  it('400 for a key that is empty, too long, not visible ASCII, or sent twice; nothing is stored', async () => {
    const s = await start()
    for (const value of ['', 'x'.repeat(256), 'a key', 'clé', ['a', 'b']]) {
      const res = await publish(s, hello, { 'idempotency-key': value as string })
      expect(res.status, JSON.stringify(value)).toBe(400)
      expect(res.json.message).toMatch(/"Idempotency-Key" of 1–255 visible ASCII characters/)
    }
    expect(await latestSeq(s, 'alice')).toBe(0)
    expect((await publish(s, hello, { 'idempotency-key': 'x'.repeat(255) })).status).toBe(201)
  })

  it('publishes with one key at once store one notification, and all get its answer', async () => {
    const s = await start()
    const replies = await Promise.all(Array.from({ length: 6 }, () => publish(s, hello, { 'idempotency-key': 'race' })))
    expect(replies.map((r) => r.status)).toEqual([201, 201, 201, 201, 201, 201])
    expect(new Set(replies.map((r) => JSON.stringify(r.json))).size).toBe(1)
    expect(replies.filter((r) => r.headers['idempotent-replayed'] === undefined)).toHaveLength(1)
    expect(await latestSeq(s, 'alice')).toBe(1)
  })
})

/** Commits each publish, then fails the next `lose` of them as a connection lost before the reply would. */
class LosingReplies extends SqliteStore {
  lose = 0
  override async publish(audience: Audience, input: NotificationInput, idempotency?: IdempotencyKey): Promise<Published> {
    const published = await super.publish(audience, input, idempotency)
    if (this.lose > 0) {
      this.lose--
      throw new Error('Connection terminated unexpectedly')
    }
    return published
  }
}

describe('a publish whose commit the server cannot confirm', () => {
  let dir: string | undefined
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
  })
  const losing = async () => {
    dir = mkdtempSync(join(tmpdir(), 'belfry-idem-'))
    const store = new LosingReplies(join(dir, 'belfry.db'))
    return { store, s: await start({ store }) }
  }

  it('answers 503 without claiming nothing was stored; the retry with the same key answers with the stored id, once', async () => {
    const { store, s } = await losing()
    store.lose = 1
    const lost = await publish(s, hello, { 'idempotency-key': 'k' })
    expect(lost).toMatchObject({ status: 503, json: { error: 'unavailable' } })
    expect(lost.json.message).toMatch(/may or may not have been stored; retry later with the same Idempotency-Key/)
    expect(lost.json.message).not.toMatch(/nothing was stored/)
    const retry = await publish(s, hello, { 'idempotency-key': 'k' })
    expect(retry.status).toBe(201)
    expect(retry.headers['idempotent-replayed']).toBe('true')
    const inbox = await store.after('alice', 0, 10)
    expect(inbox.map((n) => n.id)).toEqual(retry.json.ids)
  })

  it('the replayed answer brings a first attempt that was never announced to the connected recipients at once', async () => {
    const { store, s } = await losing()
    const c = await authedClient(s, 'alice')
    store.lose = 1
    expect((await publish(s, hello, { 'idempotency-key': 'k2' })).status).toBe(503)
    // Committed, but the server never heard so: nothing was announced, the socket has nothing.
    const retry = await publish(s, hello, { 'idempotency-key': 'k2' })
    expect(retry.headers['idempotent-replayed']).toBe('true')
    // Without the replay's catch-up, only the reconcile (every 30 s) or the next notification would bring it.
    const within = (ms: number) => new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`nothing within ${ms} ms`)), ms))
    const delivered = await Promise.race([c.next((f) => f.type === 'notification'), within(3000)])
    expect(delivered).toMatchObject({ seq: 1, title: 'Hello' })
    c.close()
  })

  it('without a key the retry stores it a second time (why publishers should send one)', async () => {
    const { store, s } = await losing()
    store.lose = 1
    const lost = await publish(s, hello)
    expect(lost.status).toBe(503)
    expect(lost.json.message).toMatch(/retry later, with an Idempotency-Key to store it at most once/)
    expect((await publish(s, hello)).status).toBe(201)
    expect((await store.after('alice', 0, 10)).map((n) => n.title)).toEqual(['Hello', 'Hello'])
  })
})
