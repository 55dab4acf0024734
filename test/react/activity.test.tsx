/**
 * belfry/react under React 19's <Activity>: a hidden subtree keeps its state
 * (the provider's store) while its effects are cleaned up, and runs them again
 * when shown.
 */
import { act, render, cleanup as unmountAll } from '@testing-library/react'
import { Activity } from 'react'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { NotificationClient } from '../../src/index.js'
import { BelfryProvider, useConnectionState, useNotifications } from '../../src/react/index.js'
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
const titles = () => [...document.querySelectorAll('li')].map((li) => li.textContent)

function Inbox() {
  const { notifications } = useNotifications()
  const { state } = useConnectionState()
  return (
    <div>
      <p data-testid="state">{state}</p>
      <ul>
        {notifications.map((n) => (
          <li key={n.id}>{n.title}</li>
        ))}
      </ul>
    </div>
  )
}

describe('BelfryProvider inside <Activity>', () => {
  it('hidden, then shown again: the hooks follow a live client, not one closed while hidden that still says online', async () => {
    const server = startMockServer()
    const made: NotificationClient[] = []
    const make = () => {
      const { client } = createClient(server)
      made.push(client)
      return client
    }
    const App = ({ mode }: { mode: 'visible' | 'hidden' }) => (
      <Activity mode={mode}>
        <BelfryProvider client={make}>
          <Inbox />
        </BelfryProvider>
      </Activity>
    )
    const view = render(<App mode="visible" />)
    await settle()
    expect(text('state')).toBe('online')

    view.rerender(<App mode="hidden" />)
    await settle(100)
    view.rerender(<App mode="visible" />)
    await settle(100)

    // Shown again, the provider holds its client open: whatever the server sends reaches the list.
    const client = made.at(-1)!
    expect([text('state'), client.state]).toEqual(['online', 'online'])
    server.peer.send(note(1))
    await settle()
    expect(titles()).toEqual(['title 1'])
  })
})
