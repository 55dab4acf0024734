/**
 * Hydration of the server's markup in a DOM: the hooks hydrate from the same
 * server snapshot (no mismatch, nothing logged), then follow the client the
 * factory makes after hydration.
 */
import { act } from '@testing-library/react'
import { hydrateRoot, type Root } from 'react-dom/client'
import { renderToString } from 'react-dom/server'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { cleanup, createClient, note, startMockServer, tick } from '../helpers/mock-server.js'
import { App, SERVER_MARKUP } from './app.js'

let root: Root | undefined
beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  act(() => root?.unmount())
  root = undefined
  cleanup()
})

describe('hydration', () => {
  it('hydrates the server markup with no console error, then shows the live client', async () => {
    const server = startMockServer({ auth: { unreadCount: 1 } })
    const factory = vi.fn(() => createClient(server).client)
    const html = renderToString(<App client={factory} />)
    expect(html).toBe(SERVER_MARKUP)
    const container = document.createElement('div')
    container.innerHTML = html
    document.body.append(container)

    const error = vi.spyOn(console, 'error')
    const recoverable: unknown[] = []
    await act(async () => {
      root = hydrateRoot(container, <App client={factory} />, { onRecoverableError: (e) => recoverable.push(e) })
    })
    await act(() => tick())
    expect(error).not.toHaveBeenCalled()
    expect(recoverable).toEqual([])
    expect(factory).toHaveBeenCalledTimes(1)
    expect(container.querySelector('p')?.textContent).toBe('online')
    await act(async () => server.peer.send(note(1, { title: 'hydrated' })))
    expect(container.querySelector('li')?.textContent).toBe('hydrated')
    expect(container.querySelector('button')?.textContent).toBe('2')
  })
})
