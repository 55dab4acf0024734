/**
 * Review: `options.WebSocket` is checked only for being a function. A function that is no WebSocket
 * constructor passes: ws's `WebSocketServer` (the other export of `ws`, an easy slip in Node), or a class
 * without the WebSocket constants. `connect()` then hands it to reconnecting-websocket, whose check
 * (`CLOSING === 2`) throws "No valid WebSocket class provided" inside a promise nothing handles: an
 * unhandled rejection (which ends a Node ≥ 15 process), no `error` event, and the client in `connecting`
 * for ever. An arrow function fails at construction with the engine's "Class extends value … is not a
 * constructor or null". README: "A bad option throws a TypeError naming it".
 */

import { describe, expect, it } from 'vitest'
import { WebSocketServer } from 'ws'
import { NotificationClient } from '../../../src/index.js'
import { jwt } from '../../helpers/mock-server.js'

describe('options.WebSocket that is a function but no WebSocket constructor', () => {
  it('throws a TypeError naming options.WebSocket at construction', () => {
    for (const [name, WS] of [
      ['WebSocketServer', WebSocketServer],
      ['a class without the WebSocket constants', class {}],
      ['an arrow function', () => {}],
    ] as const) {
      let error: unknown
      try {
        new NotificationClient({ url: 'ws://options.test/ws', token: jwt('u1'), WebSocket: WS as never }).close()
      } catch (e) {
        error = e
      }
      expect(error, name).toBeInstanceOf(TypeError)
      expect((error as Error).message, name).toMatch(/options\.WebSocket/)
    }
  })
})
