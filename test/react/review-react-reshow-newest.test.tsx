/**
 * Review: a provider shown again by <Activity> on a client another provider kept online finds it
 * online, but loads the page before its oldest item, not the newest: what came while it was hidden
 * never reaches its list.
 */
import { act, render, cleanup as unmountAll } from '@testing-library/react'
import { Activity } from 'react'
import { afterEach, beforeEach, expect, it, vi } from 'vitest'
import { BelfryProvider, useNotifications } from '../../src/react/index.js'
import { cleanup, createClient, type Frame, note, startMockServer, tick } from '../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  unmountAll()
  cleanup()
})

const settle = (ms = 20) => act(() => tick(ms))

it('shown again on a client online meanwhile: the list gets the newest page (what came while hidden)', async () => {
  const server = startMockServer()
  const { client } = createClient(server)
  /** The user's inbox, newest first: seqs 1..latest. */
  let latest = 0
  const send = (seq: number) => {
    latest = seq
    server.peer.send(note(seq))
  }
  /** Answers every history request not answered yet, as a server does: the page below `before`, newest first. */
  const answered = new Set<unknown>()
  const answer = async () => {
    for (const h of server.sent('history') as (Frame & { before?: number; requestId: string })[]) {
      if (answered.has(h.requestId)) continue
      answered.add(h.requestId)
      const top = Math.min(latest, (h.before ?? latest + 1) - 1)
      const items = Array.from({ length: top }, (_, i) => note(top - i))
      server.peer.send({ type: 'history', items, requestId: h.requestId })
    }
    await settle()
  }
  let inbox: string[] = []
  function Inbox() {
    inbox = useNotifications().notifications.map((n) => n.title)
    return null
  }
  // A bell always shown, and an inbox view <Activity> hides and shows: two providers of one client.
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
  const view = render(<App mode="visible" />)
  await settle()
  expect(client.state).toBe('online')
  await act(async () => {
    send(1)
    send(2)
  })
  await settle()
  await answer()
  expect(inbox).toEqual(['title 2', 'title 1'])

  view.rerender(<App mode="hidden" />)
  await settle(100)
  expect(client.state).toBe('online') // the bell's provider holds it
  await act(async () => send(3)) // comes while the inbox is hidden
  await settle()

  view.rerender(<App mode="visible" />)
  await settle()
  await answer()
  // The provider found its client online: the newest page (no `before`) is what it should load.
  expect(server.sent('history').at(-1)).not.toHaveProperty('before')
  expect(inbox).toEqual(['title 3', 'title 2', 'title 1'])
})
