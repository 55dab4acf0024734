/**
 * Review: belfry/react's loadMore() asks for the newest page while the newest page is owed (f4bafa6), but its answer
 * does not pay that debt: when the owed page itself failed (an error reply, a timeout), every loadMore() after asks
 * for the newest page again, until the client's next 'online', and the list never grows past it.
 */
import { act, render, cleanup as unmountAll } from '@testing-library/react'
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

it('a loadMore() after the owed newest page failed loads below the list, not the newest page again', async () => {
  const server = startMockServer()
  const { client } = createClient(server)
  client.connect() // the app connects its client itself: the provider finds it started, and owes the list the newest page
  await settle()
  expect(client.state).toBe('online')
  const latest = 130
  const answered = new Set<unknown>()
  type History = Frame & { before?: number; limit?: number; requestId: string }
  const unanswered = () => (server.sent('history') as History[]).filter((h) => !answered.has(h.requestId))
  /** Answers each history request as a server does (20 by default, `next` when older ones exist). */
  const answer = async () => {
    for (const h of unanswered()) {
      answered.add(h.requestId)
      const top = Math.min(latest, (h.before ?? latest + 1) - 1)
      const length = Math.min(top, h.limit ?? 20)
      const items = Array.from({ length }, (_, i) => note(top - i))
      server.peer.send({ type: 'history', items, ...(top > length ? { next: top - length + 1 } : {}), requestId: h.requestId })
    }
    await settle()
  }
  let list!: ReturnType<typeof useNotifications>
  function List() {
    list = useNotifications()
    return null
  }
  render(
    <BelfryProvider client={client} maxItems={300}>
      <List />
    </BelfryProvider>,
  )
  await settle()
  // The owed page (limit 100) is refused: rate limited, say. The store owes it till the next 'online'.
  const [owed] = unanswered()
  expect(owed).toMatchObject({ limit: 100 })
  answered.add(owed!.requestId)
  server.peer.send({ type: 'error', code: 'rate_limited', message: 'slow down', requestId: owed!.requestId })
  await settle()

  // The infinite list's sentinel is in view: loadMore(), then loadMore() again once it is done.
  let loading: Promise<void> | undefined
  act(() => {
    loading = list.loadMore()
  })
  await settle()
  await answer()
  await act(() => loading)
  expect(list.notifications.map((n) => n.seq)).toEqual(Array.from({ length: 20 }, (_, i) => 130 - i))
  expect(list.hasMore).toBe(true)

  act(() => {
    loading = list.loadMore()
  })
  loading!.catch(() => {}) // rejected by the cleanup, should the expectation below fail first
  await settle()
  // Expected: the page below the list's oldest (111). Got: the newest page again (before undefined), at every call.
  expect(unanswered().map((h) => h.before)).toEqual([111])
  await answer()
  await act(() => loading)
  expect(list.notifications).toHaveLength(40)
})
