/**
 * A provider hidden by <Activity> while another provider of the same client keeps it open: shown again, its
 * hooks say what the client says now (README: useUnreadCount is "the user's unread count, as the server last
 * said"; useConnectionState the state), not what they said before the view was hidden. Regression: the store
 * read the client's count and state only when it made or took the client, and kept what it had when shown again.
 */
import { act, render, cleanup as unmountAll } from '@testing-library/react'
import { Activity } from 'react'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { BelfryProvider, useConnectionState, useUnreadCount } from '../../src/react/index.js'
import { cleanup, createClient, note, startMockServer, tick } from '../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  unmountAll()
  cleanup()
})

const settle = (ms = 20) => act(() => tick(ms))
const text = (testId: string) => document.querySelector(`[data-testid="${testId}"]`)?.textContent

function Inbox() {
  return (
    <div>
      <p data-testid="unread">{useUnreadCount()}</p>
      <p data-testid="state">{useConnectionState().state}</p>
    </div>
  )
}

/** A bell's provider always shown, and an inbox's provider of the same client that <Activity> hides and shows. */
function setup() {
  const server = startMockServer({ auth: { seq: 1, unreadCount: 1 } })
  const { client } = createClient(server)
  const App = ({ mode }: { mode: 'visible' | 'hidden' }) => (
    <>
      <BelfryProvider client={client}>{null}</BelfryProvider>
      <Activity mode={mode}>
        <BelfryProvider client={client}>
          <Inbox />
        </BelfryProvider>
      </Activity>
    </>
  )
  return { server, client, App }
}

describe('<Activity> hides one of two providers of a client, then shows it again', () => {
  it('shown again, useUnreadCount is the client’s count now, not the one from before it was hidden', async () => {
    const { server, client, App } = setup()
    const view = render(<App mode="visible" />)
    await settle()
    expect([client.state, text('unread')]).toEqual(['online', '1'])

    view.rerender(<App mode="hidden" />)
    await settle(100)
    expect(client.state).toBe('online') // the bell's provider holds it
    // Two notifications come while the inbox is hidden: the user has 3 unread.
    await act(async () => {
      server.peer.send(note(2))
      server.peer.send(note(3))
    })
    await settle()
    expect(client.unreadCount).toBe(3)

    view.rerender(<App mode="visible" />)
    await settle()
    expect(text('unread')).toBe(String(client.unreadCount))
  })

  it('shown again, useConnectionState is the client’s state now, not the one from before it was hidden', async () => {
    const { client, App } = setup()
    const view = render(<App mode="visible" />)
    await settle()
    expect(text('state')).toBe('online')

    view.rerender(<App mode="hidden" />)
    await settle(100)
    // The browser goes offline while the inbox is hidden.
    await act(async () => {
      window.dispatchEvent(new Event('offline'))
    })
    await settle()
    expect(client.state).toBe('offline')

    view.rerender(<App mode="visible" />)
    await settle()
    expect(text('state')).toBe(client.state)
  })

  it('hidden and shown again within one macrotask (before the hidden one lets go): useConnectionState is the client’s state now', async () => {
    const { client, App } = setup()
    const view = render(<App mode="visible" />)
    await settle()
    expect(text('state')).toBe('online')

    // Hidden; the browser goes offline; shown again: no timer has run in between.
    act(() => view.rerender(<App mode="hidden" />))
    act(() => {
      window.dispatchEvent(new Event('offline'))
    })
    expect(client.state).toBe('offline')
    act(() => view.rerender(<App mode="visible" />))
    await settle()
    expect(text('state')).toBe(client.state)
  })
})
