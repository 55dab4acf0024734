/**
 * The provider's client over its life: hidden by React's <Activity> (its effects cleaned up, its
 * store kept), the provider lets go of the client and makes a new one when shown again; a client
 * the app closed itself (a logout) stays closed, and no new one is made or left connected; a hook's
 * request after the provider let go of its client is refused as a closed client's is, and makes none;
 * a child's request from its effect in the commit that shows the provider again goes to the new client.
 */
import { act, render, cleanup as unmountAll } from '@testing-library/react'
import { Activity, useEffect } from 'react'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type NotificationClient, RequestError } from '../../src/index.js'
import { BelfryProvider, type Notifications, useBelfryClient, useConnectionState, useNotifications } from '../../src/react/index.js'
import { cleanup, createClient, type MockServer, note, startMockServer, tick } from '../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  unmountAll()
  cleanup()
})

const settle = (ms = 20) => act(() => tick(ms))
const text = (testId: string) => document.querySelector(`[data-testid="${testId}"]`)?.textContent
/** Keeps what a request settled with, its value or its error, in `outcomes`. */
const settled = (outcomes: unknown[]) => (outcome: unknown) => void outcomes.push(outcome)
const titles = () => [...document.querySelectorAll('li')].map((li) => li.textContent)

/**
 * A server, a provider's client function that records each client it makes, and what the hooks see; the
 * app is the provider in an <Activity>, with `Child` (by default one that shows the hooks' values) in it.
 */
function setup(Child?: () => null) {
  const server: MockServer = startMockServer()
  const made: NotificationClient[] = []
  const make = () => {
    const { client } = createClient(server)
    made.push(client)
    return client
  }
  const seen: { api?: Notifications; client?: NotificationClient | undefined } = {}
  function Inbox() {
    const api = useNotifications()
    const { state } = useConnectionState()
    seen.api = api
    seen.client = useBelfryClient()
    return (
      <div>
        <p data-testid="state">{state}</p>
        <ul>
          {api.notifications.map((n) => (
            <li key={n.id}>{n.title}</li>
          ))}
        </ul>
      </div>
    )
  }
  const App = ({ mode }: { mode: 'visible' | 'hidden' }) => (
    <Activity mode={mode}>
      <BelfryProvider client={make}>{Child ? <Child /> : <Inbox />}</BelfryProvider>
    </Activity>
  )
  const open = () => server.peers.filter((p) => !p.closed)
  return { server, made, seen, App, open }
}

describe('BelfryProvider: its client over its life', () => {
  it('hidden by <Activity>, then shown again: the hooks follow a live client, not one closed while hidden that still says online', async () => {
    const { server, made, App } = setup()
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

  it('closed by the app (a logout), then hidden and shown: no new client is made or connected', async () => {
    const { made, seen, App, open } = setup()
    const view = render(<App mode="visible" />)
    await settle()
    expect(seen.client?.state).toBe('online')
    await act(async () => seen.client!.close())
    await settle()
    view.rerender(<App mode="hidden" />)
    await settle(100)
    view.rerender(<App mode="visible" />)
    await settle(100)
    expect(made).toHaveLength(1)
    expect(open()).toHaveLength(0)
  })

  it('closed by the app, then a hook’s request and the unmount: no new, unheld client is left connected', async () => {
    const { made, seen, App, open } = setup()
    const view = render(<App mode="visible" />)
    await settle()
    expect(seen.client).toBe(made[0])
    await act(async () => seen.client!.close())
    await settle()
    // A button still on screen marks everything read.
    await act(async () => {
      seen.api!.markAllRead().catch(() => {})
    })
    await settle(100)
    view.unmount()
    await settle(100)
    expect(made.map((c) => c.state)).toEqual(made.map(() => 'closed'))
    expect(open()).toHaveLength(0)
  })

  it('unmounted, then a hook’s late request: refused as a closed client’s, and no new client is made or connected', async () => {
    const { server, made, seen, App, open } = setup()
    const view = render(<App mode="visible" />)
    await settle()
    await act(async () => server.peer.send(note(1)))
    const { markRead, markAllRead, loadMore } = seen.api!
    // The user left (a logout, a route change): the provider closes its client a macrotask later.
    view.unmount()
    await settle(100)
    expect(made[0]!.state).toBe('closed')
    expect(open()).toHaveLength(0)
    // The continuation of a click handler that awaited something makes its request now.
    const outcomes: unknown[] = []
    for (const request of [markRead('n1'), markAllRead(), loadMore()]) request.then(settled(outcomes), settled(outcomes))
    await settle(2000)
    expect(outcomes.map((e) => [e instanceof RequestError, (e as Error).message])).toEqual([
      [true, 'closed'],
      [true, 'closed'],
      [true, 'closed'],
    ])
    expect({ made: made.length, open: open().length, states: made.map((c) => c.state) }).toEqual({ made: 1, open: 0, states: ['closed'] })
  })

  it('hidden by <Activity>, then a hook’s request: refused, no socket opened while hidden or left after the unmount', async () => {
    const { made, seen, App, open } = setup()
    const view = render(<App mode="visible" />)
    await settle()
    const { loadMore } = seen.api!
    view.rerender(<App mode="hidden" />)
    await settle(100)
    expect(open()).toHaveLength(0) // no socket stays open for a hidden view
    const outcomes: unknown[] = []
    loadMore().then(settled(outcomes), settled(outcomes))
    await settle(100)
    expect(outcomes.map((e) => [e instanceof RequestError, (e as Error).message])).toEqual([[true, 'closed']])
    const whileHidden = open().length
    view.unmount()
    await settle(2000)
    expect({ whileHidden, afterUnmount: open().length, states: made.map((c) => c.state) }).toEqual({
      whileHidden: 0,
      afterUnmount: 0,
      states: made.map(() => 'closed'),
    })
  })
  it('shown again by <Activity>: a child’s request from its effect in that commit goes to the new client, not the closed one', async () => {
    /** What each show's request settled with (pending: not yet). */
    const outcomes: string[] = []
    function MarkAllOnShow() {
      const { markAllRead } = useNotifications()
      // A common pattern: opening (showing) the inbox marks everything read.
      useEffect(() => {
        const i = outcomes.push('pending') - 1
        markAllRead().then(
          () => {
            outcomes[i] = 'ok'
          },
          (e: Error) => {
            outcomes[i] = `${e.name}: ${e.message}`
          },
        )
      }, [markAllRead])
      return null
    }
    const { server, made, App } = setup(MarkAllOnShow)
    const view = render(<App mode="visible" />)
    await settle()
    // The first show: the child's effect, before the provider's, makes the client; the request goes out.
    expect(server.sent('mark_read')).toHaveLength(1)

    view.rerender(<App mode="hidden" />)
    await settle(100)
    expect(made[0]!.state).toBe('closed') // let go of while hidden
    // The first show's request, unanswered, went with its client: rejected as it closed (right).
    expect(outcomes).toEqual(['RequestError: closed'])

    view.rerender(<App mode="visible" />)
    await settle(100)
    // Shown again, the provider holds a new client, online: the child's request of this commit is its.
    expect(made.at(-1)!.state).toBe('online')
    // The second show's request: sent on the new client's socket, waiting for its reply; not refused as 'closed'.
    expect(outcomes[1]).toBe('pending')
    expect(server.sent('mark_read')).toHaveLength(2)
  })
})
