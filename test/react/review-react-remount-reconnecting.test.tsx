/**
 * Review: a provider (re)mounted on a client the app connected loads the newest page only if the
 * client is online at that very moment: remounted while it reconnects (a deploy's 1001, a blip), the
 * list stays empty beside the client's unread count, the case e4346d5 set out to fix.
 */
import { act, render, cleanup as unmountAll } from '@testing-library/react'
import { afterEach, beforeEach, expect, it, vi } from 'vitest'
import { BelfryProvider, useNotifications, useUnreadCount } from '../../src/react/index.js'
import { cleanup, createClient, type Frame, note, startMockServer, tick } from '../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  unmountAll()
  cleanup()
})

const settle = (ms = 20) => act(() => tick(ms))

it('remounted (keyed anew) while its connected client reconnects: the list gets the newest page once online', async () => {
  // The user's inbox holds 1 and 2, both unread; every auth says so.
  const server = startMockServer({ auth: { seq: 2, unreadCount: 2 } })
  const { client } = createClient(server)
  const answer = async () => {
    for (const h of server.sent('history') as (Frame & { requestId: string; answered?: true })[]) {
      if (h.answered) continue
      h.answered = true
      server.peer.send({ type: 'history', items: [note(2), note(1)], requestId: h.requestId })
    }
    await settle()
  }
  let seen: { titles: string[]; unread: number } = { titles: [], unread: 0 }
  function Inbox() {
    const titles = useNotifications().notifications.map((n) => n.title)
    seen = { titles, unread: useUnreadCount() }
    return null
  }
  const App = ({ page }: { page: string }) => (
    <BelfryProvider key={page} client={client}>
      <Inbox />
    </BelfryProvider>
  )
  client.connect() // the app connects its client itself
  await settle()
  expect(client.state).toBe('online')

  // Mounted on the online client: the newest page (e4346d5).
  const view = render(<App page="a" />)
  await settle()
  await answer()
  expect(seen).toEqual({ titles: ['title 2', 'title 1'], unread: 2 })

  // The server restarts (1001): the client reconnects; the app's route changes meanwhile.
  await act(async () => server.peer.close(1001, 'going away'))
  await settle()
  expect(client.state).toBe('reconnecting')
  view.rerender(<App page="b" />)
  await settle(1000)
  await answer()
  expect(client.state).toBe('online')
  // As remounted a moment later (online): the newest page, not an empty list beside 2 unread.
  expect(seen).toEqual({ titles: ['title 2', 'title 1'], unread: 2 })
})
