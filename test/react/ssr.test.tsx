// @vitest-environment node
/**
 * Server rendering in Node, where there is no window and no WebSocket: the
 * hooks render the empty server snapshot, and the factory is never called.
 */
import { renderToString } from 'react-dom/server'
import { describe, expect, it, vi } from 'vitest'
import { NotificationClient } from '../../src/index.js'
import { App, SERVER_MARKUP } from './app.js'

describe('server rendering', () => {
  it('renders the server snapshot without making a client or touching window', () => {
    expect('window' in globalThis).toBe(false) // any use of window would throw here
    const factory = vi.fn(() => new NotificationClient({ url: 'ws://localhost/ws', token: 't' }))
    const error = vi.spyOn(console, 'error')
    expect(renderToString(<App client={factory} />)).toBe(SERVER_MARKUP)
    expect(factory).not.toHaveBeenCalled()
    expect(error).not.toHaveBeenCalled()
  })
})
