/**
 * A client the app closed (a logout) stays closed: an <Activity> that hides and shows the provider
 * afterwards makes no new one (only a client the provider closed itself, hidden, is made anew).
 */
import { act, render, cleanup as unmountAll } from '@testing-library/react'
import { Activity } from 'react'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { NotificationClient } from '../../src/index.js'
import { BelfryProvider, useBelfryClient } from '../../src/react/index.js'
import { cleanup, createClient, startMockServer, tick } from '../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  unmountAll()
  cleanup()
})

const settle = (ms = 20) => act(() => tick(ms))

describe('BelfryProvider in <Activity> with a client the app closed', () => {
  it('hidden and shown again after a logout: no new client is made or connected', async () => {
    const server = startMockServer()
    const made: NotificationClient[] = []
    const make = () => {
      const { client } = createClient(server)
      made.push(client)
      return client
    }
    let live: NotificationClient | undefined
    function Inbox() {
      live = useBelfryClient()
      return null
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
    expect(made).toHaveLength(1)
    expect(live?.state).toBe('online')

    // The app logs out: it closes the provider's client for good.
    await act(async () => live!.close())
    await settle()

    view.rerender(<App mode="hidden" />)
    await settle(100)
    view.rerender(<App mode="visible" />)
    await settle(100)

    // README: "A client the app closed itself (a logout) stays closed: ... no new one is made."
    // store.ts's cleanup cleared the slot for a client it did not close (closed already): a new one is made and connects.
    expect(made).toHaveLength(1)
    expect(server.peers.filter((p) => !p.closed)).toHaveLength(0)
  })
})
