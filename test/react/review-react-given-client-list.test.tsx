/**
 * Review: with a client the app made and passes in, a provider mounted (or remounted) later starts with an
 * empty list, though the list is documented as "the notifications that arrived since the client was made".
 */
import { act, render, cleanup as unmountAll } from '@testing-library/react'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { BelfryProvider, useNotifications, useUnreadCount } from '../../src/react/index.js'
import { cleanup, createClient, note, startMockServer, tick } from '../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  unmountAll()
  cleanup()
})

const settle = (ms = 20) => act(() => tick(ms))

function Inbox({ name }: { name: string }) {
  const { notifications } = useNotifications()
  return (
    <ul data-testid={name} data-unread={useUnreadCount()}>
      {notifications.map((n) => (
        <li key={n.id}>{n.title}</li>
      ))}
    </ul>
  )
}
const titles = (name: string) => [...document.querySelectorAll(`[data-testid="${name}"] li`)].map((li) => li.textContent)

describe('belfry/react: a client the app passes in', () => {
  it('a provider remounted (a layout keyed anew) on the same client still lists what arrived since the client was made', async () => {
    const server = startMockServer()
    const { client } = createClient(server)
    const App = ({ layout }: { layout: string }) => (
      <BelfryProvider key={layout} client={client}>
        <Inbox name="inbox" />
      </BelfryProvider>
    )
    const view = render(<App layout="a" />)
    await settle()
    await act(async () => server.peer.send(note(1)))
    await act(async () => server.peer.send(note(2)))
    expect(titles('inbox')).toEqual(['title 2', 'title 1'])
    // The app's layout changes: the provider remounts on the same, still online client (one socket throughout).
    view.rerender(<App layout="b" />)
    await settle()
    expect(client.state).toBe('online')
    expect(server.peers).toHaveLength(1)
    const unread = document.querySelector('[data-testid="inbox"]')?.getAttribute('data-unread')
    // Two unread, and the two notifications the client handed over are still the list's.
    expect({ unread, titles: titles('inbox') }).toEqual({ unread: '2', titles: ['title 2', 'title 1'] })
  })
})
