/**
 * Review: a hook's request that comes after the provider let go of its client (unmounted, or hidden
 * by <Activity>) makes and connects a new client that no provider holds and nothing ever closes.
 */
import { act, render, cleanup as unmountAll } from '@testing-library/react'
import { Activity } from 'react'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { NotificationClient } from '../../src/index.js'
import { BelfryProvider, type Notifications, useNotifications } from '../../src/react/index.js'
import { cleanup, createClient, note, startMockServer, tick } from '../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  unmountAll()
  cleanup()
})

const settle = (ms = 20) => act(() => tick(ms))

function setup() {
  const server = startMockServer()
  const made: NotificationClient[] = []
  const make = () => {
    const { client } = createClient(server)
    made.push(client)
    return client
  }
  const seen: { api?: Notifications } = {}
  function Inbox() {
    seen.api = useNotifications()
    return null
  }
  const open = () => server.peers.filter((p) => !p.closed)
  return { server, made, make, seen, Inbox, open }
}

describe('belfry/react: a request after the provider let go of its client', () => {
  it('after the provider unmounted (a logout, a route change), a late markRead leaves no socket open', async () => {
    const { server, made, make, seen, Inbox, open } = setup()
    const view = render(
      <BelfryProvider client={make}>
        <Inbox />
      </BelfryProvider>,
    )
    await settle()
    await act(async () => server.peer.send(note(1)))
    const { markRead } = seen.api!
    // The user left: the provider unmounts and closes its client a macrotask later.
    view.unmount()
    await settle(100)
    expect(made[0]!.state).toBe('closed')
    expect(open()).toHaveLength(0)
    // The continuation of a click handler that awaited something calls markRead now.
    const outcome = markRead('n1').catch((e: unknown) => e)
    await settle(2000)
    // No provider holds any client any more, so none should be connected: yet a new one was made and stays online.
    expect({ made: made.length, open: open().length, states: made.map((c) => c.state) }).toEqual({
      made: 1,
      open: 0,
      states: ['closed'],
    })
    void outcome
  })

  it('hidden by <Activity> and then unmounted while hidden, a late loadMore leaves no socket open', async () => {
    const { made, make, seen, Inbox, open } = setup()
    const App = ({ mode }: { mode: 'visible' | 'hidden' }) => (
      <Activity mode={mode}>
        <BelfryProvider client={make}>
          <Inbox />
        </BelfryProvider>
      </Activity>
    )
    const view = render(<App mode="visible" />)
    await settle()
    const { loadMore } = seen.api!
    view.rerender(<App mode="hidden" />)
    await settle(100)
    expect(open()).toHaveLength(0) // README: no socket stays open for a hidden view
    void loadMore().catch(() => {})
    await settle(100)
    const whileHidden = open().length
    view.unmount()
    await settle(2000)
    expect({ whileHidden, afterUnmount: open().length, states: made.map((c) => c.state) }).toEqual({
      whileHidden: 0,
      afterUnmount: 0,
      states: made.map(() => 'closed'),
    })
  })
})
