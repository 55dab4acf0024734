import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { cleanup, createClient, note, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

const isSeq = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0

describe('auth_success.oldestSeq that is no seq', () => {
  // A server whose store hands out bigints as strings (pg's default), or a hostile one: the client's cursor must stay a seq.
  for (const oldestSeq of ['7', 6.5]) {
    it(`oldestSeq ${JSON.stringify(oldestSeq)} leaves the cursor a seq: every later auth sends a valid since`, async () => {
      let connection = 0
      const server = startMockServer({
        auth: (peer) => {
          connection++
          // Second connection: the floor the client must not take as it is.
          peer.send({ type: 'auth_success', message: 'ok', userId: 'u1', seq: 10, unreadCount: 0, ...(connection === 2 && { oldestSeq }) })
        },
      })
      const storage = new Map<string, string>()
      const t = createClient(server, {
        storage: { getItem: (k) => storage.get(k) ?? null, setItem: (k, v) => void storage.set(k, v) },
      })
      t.client.connect()
      await tick()
      for (let s = 1; s <= 5; s++) server.peer.send(note(s))
      await tick()
      expect(t.log.notifications.map((n) => n.seq)).toEqual([1, 2, 3, 4, 5])
      server.peer.close(1011)
      await tick(1000) // reconnects: auth_success with the bad oldestSeq
      expect(server.peers).toHaveLength(2)
      server.peer.close(1011)
      await tick(2000) // reconnects again
      expect(server.peers.length).toBeGreaterThanOrEqual(3)
      const sinces = server.sent('auth').map((f) => f.since)
      // Sent as it came ('7', 6.5: the server refuses the auth frame as bad_frame, at every reconnect, until a reload).
      expect(sinces.filter((s) => !isSeq(s))).toEqual([])
      // The persisted cursor too ('6.5' or '1e+300' reads back as no cursor: a reload replays from the acked cursor).
      expect(storage.get('belfry:cursor:u1')).toMatch(/^\d+$/)
      expect(isSeq(Number(storage.get('belfry:cursor:u1')))).toBe(true)
    })
  }
})
