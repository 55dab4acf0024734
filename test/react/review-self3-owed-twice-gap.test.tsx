/**
 * The newest page owed to the list is asked for twice, and both answers are merged as owed: loadMore()'s, made before
 * the client is online (sent first, at auth), and online()'s (sent as the status event comes). The first pays the
 * debt; a loadMore() made then asks below the list's oldest (31). One notification published before the second owed
 * page is read moves its `next` to 32: merged as owed again, it drops 31 from a list no longer owed, and the page below
 * 31 comes after it: 31 is missing from the list for good.
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

it('a second owed page, merged after the debt is paid and a loadMore() below the list is sent, leaves no gap', async () => {
  const server = startMockServer()
  const { client } = createClient(server)
  type History = Frame & { before?: number; limit?: number; requestId: string }
  const history = () => server.sent('history') as History[]
  /** Answers one history request with the inbox holding 1..latest (20 by default, `next` when older ones exist). */
  const answer = async (h: History, latest: number) => {
    const top = Math.min(latest, (h.before ?? latest + 1) - 1)
    const length = Math.min(top, h.limit ?? 20)
    const items = Array.from({ length }, (_, i) => note(top - i))
    server.peer.send({ type: 'history', items, ...(top > length ? { next: top - length + 1 } : {}), requestId: h.requestId })
    await settle()
  }
  let list!: ReturnType<typeof useNotifications>
  function List() {
    list = useNotifications()
    return null
  }
  client.connect() // the app connects its client, then renders: the provider finds it started and owes the newest page
  render(
    <BelfryProvider client={client} maxItems={300}>
      <List />
    </BelfryProvider>,
  )
  // An infinite list, empty: its sentinel is in view at once.
  let loading: Promise<void> | undefined
  act(() => {
    loading = list.loadMore()
  })
  await settle()
  expect(client.state).toBe('online')
  // loadMore()'s request went out at auth, before the status event; online()'s after it. Both the newest page.
  const [fromLoadMore, fromOnline] = history()
  expect([fromLoadMore?.limit, fromOnline?.limit, history().length]).toEqual([100, 100, 2])

  await answer(fromLoadMore!, 130) // 130..31, next 31: the debt is paid
  await act(() => loading)
  expect(list.notifications.map((n) => n.seq)).toEqual(Array.from({ length: 100 }, (_, i) => 130 - i))

  // The sentinel is still in view (or the user clicks "more"): below the oldest, 31.
  act(() => {
    loading = list.loadMore()
  })
  loading!.catch(() => {})
  await settle()
  const below = history()[2]!
  expect(below.before).toBe(31)

  await answer(fromOnline!, 131) // read on the server after 131 was published: 131..32, next 32
  await answer(below, 131) // 30..11
  await act(() => loading)
  const seqs = list.notifications.map((n) => n.seq)
  // No gap: 131 down to 11.
  expect(seqs.filter((seq, i) => i > 0 && seq !== seqs[i - 1]! - 1)).toEqual([])
  expect(seqs).toEqual(Array.from({ length: 121 }, (_, i) => 131 - i))
})
