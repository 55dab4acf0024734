/**
 * The newest page owed to the list, asked by a loadMore() made before online and by online(): the first answer pays the
 * debt; loadMore() then pages down to the inbox's end (hasMore false: the server said there are no more). The second
 * answer of the newest page, merged by owed(), sets `end = !page.next` from the newest page's `next`: hasMore is true
 * again, and the list asks one more (empty) page below its oldest, the inbox's first.
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

it('a second answer of the owed page, after loadMore() reached the end, leaves hasMore false', async () => {
  const server = startMockServer()
  const { client } = createClient(server)
  type History = Frame & { before?: number; limit?: number; requestId: string }
  const history = () => server.sent('history') as History[]
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
  client.connect()
  render(
    <BelfryProvider client={client} maxItems={300}>
      <List />
    </BelfryProvider>,
  )
  let loading: Promise<void> | undefined
  act(() => {
    loading = list.loadMore()
  })
  await settle()
  const [fromLoadMore, fromOnline] = history()
  expect([fromLoadMore?.limit, fromOnline?.limit, history().length]).toEqual([100, 100, 2])

  await answer(fromLoadMore!, 130) // 130..31, next 31: paid
  await act(() => loading)
  // Down to the inbox's end: 30..11 (next 11), then 10..1 (no next).
  for (let i = 0; i < 2; i++) {
    act(() => {
      loading = list.loadMore()
    })
    await settle()
    await answer(history().at(-1)!, 130)
    await act(() => loading)
  }
  expect(list.notifications.length).toBe(130)
  expect(list.hasMore).toBe(false)

  await answer(fromOnline!, 131) // the newest page again, read after 131 came: 131..32, next 32
  expect(list.notifications.length).toBe(131)
  expect(list.hasMore).toBe(false)
})
