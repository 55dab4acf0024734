import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { cleanup, connected, createClient, note, startMockServer, tick } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

/**
 * localStorage that reads but cannot write: Safari's private mode (setItem throws QuotaExceededError
 * while getItem works), or an origin whose storage quota is full. defaultStorage() takes it, since
 * getItem works, and it is not `volatile`.
 */
function unwritableLocalStorage() {
  const quota = () => {
    throw Object.assign(new Error('The quota has been exceeded.'), { name: 'QuotaExceededError' })
  }
  return { getItem: () => null, setItem: quota, removeItem: quota, clear: () => {}, key: () => null, length: 0 }
}

describe('a cursor storage that cannot be written', () => {
  // The cursor does not outlive the page: the next page starts without one (since 0), from the
  // server's acknowledged cursor. Against a pingAcks server that cursor trails by up to a heartbeat
  // (25 s), so a reload within it hands the app again what this page already handed it. A volatile
  // storage is acked ackDelay after each delivery for this reason (README, "Delivery, exactly once");
  // a storage that refuses every write keeps the cursor no better than memory and needs the same.
  it('acks ackDelay after a delivery, as a volatile storage does, even to a pingAcks server', async () => {
    vi.stubGlobal('localStorage', unwritableLocalStorage())
    const server = startMockServer({ auth: { seq: 2, pingAcks: true } })
    // storage: undefined → defaultStorage(), which takes the global localStorage (getItem works).
    await connected(createClient(server, { storage: undefined, ackDelay: 1000 }))
    server.peer.send(note(1))
    server.peer.send(note(2))
    await tick(1000 + 20)
    expect(server.sent('ack')).toEqual([{ type: 'ack', seq: 2 }])
  })

  it('same with a storage passed in whose setItem throws', async () => {
    const server = startMockServer({ auth: { seq: 2, pingAcks: true } })
    await connected(createClient(server, { storage: unwritableLocalStorage(), ackDelay: 1000 }))
    server.peer.send(note(1))
    server.peer.send(note(2))
    await tick(1000 + 20)
    expect(server.sent('ack')).toEqual([{ type: 'ack', seq: 2 }])
  })
})
