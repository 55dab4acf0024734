import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { type BelfryError, memoryStorage, NotificationClient } from '../../src/index.js'
import { sharedConnection } from '../../src/shared/index.js'
import { FakeLocks } from '../helpers/locks.js'

const open: NotificationClient[] = []
afterEach(() => {
  for (const c of open.splice(0)) c.close()
})

describe('review: belfry/shared and a token provider that never answers', () => {
  it('is reported within connectTimeout as a BelfryError, as README says of the token option', async () => {
    let calls = 0 // the provider is asked
    const client = new NotificationClient({
      url: 'ws://127.0.0.1:1/ws',
      // A token fetch that hangs (a stalled backend): README: "a call that never settles holds every
      // attempt, each reported at connectTimeout as a BelfryError and retried".
      token: () => {
        calls++
        return new Promise<string>(() => {})
      },
      connectTimeout: 200,
      WebSocket,
      storage: memoryStorage(),
      connection: sharedConnection({ locks: new FakeLocks().forTab('tab1'), BroadcastChannel }),
    })
    open.push(client)
    const errors: BelfryError[] = []
    client.on('error', (e) => errors.push(e))
    client.connect()
    // Without sharing the same client reports it at 200 ms, and again at each retry.
    await expect
      .poll(() => errors.map((e) => e.message), { timeout: 2000 })
      .toContain('url or token provider did not answer within connectTimeout')
  })
})
