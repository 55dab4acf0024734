/**
 * Review: belfry/react refuses a hook's request made by a child's effect as an <Activity> shows the
 * provider again, though the provider makes and connects a new client in that same commit.
 */
import { act, render, cleanup as unmountAll } from '@testing-library/react'
import { Activity, useEffect } from 'react'
import { afterEach, beforeEach, expect, it, vi } from 'vitest'
import type { NotificationClient } from '../../src/index.js'
import { BelfryProvider, useNotifications } from '../../src/react/index.js'
import { cleanup, createClient, startMockServer, tick } from '../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  unmountAll()
  cleanup()
})

const settle = (ms = 20) => act(() => tick(ms))

it('an inbox that marks all read when shown: its request after an <Activity> shows it again reaches the new client', async () => {
  const server = startMockServer()
  const made: NotificationClient[] = []
  const make = () => {
    const { client } = createClient(server)
    made.push(client)
    return client
  }
  /** What each show's request settled with (pending: not yet). */
  const outcomes: string[] = []
  function Inbox() {
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
  const App = ({ mode }: { mode: 'visible' | 'hidden' }) => (
    <Activity mode={mode}>
      <BelfryProvider client={make}>
        <Inbox />
      </BelfryProvider>
    </Activity>
  )
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
