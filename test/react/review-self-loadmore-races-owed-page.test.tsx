/**
 * The fix makes the newest page owed to a list shown again by <Activity> drop what is older than it, and
 * `hasMore` follow that page. A loadMore() made just after the list is shown again (an infinite-scroll list's
 * IntersectionObserver callback, a click), while the owed page is on its way, asks below the
 * stale oldest item; its answer, merged after the owed page, puts the page below that stale item back under
 * the owed page: the gap the fix closed (here 200..31) is there again, and loadMore() goes on below it.
 */
import { act, render, cleanup as unmountAll } from '@testing-library/react'
import { Activity } from 'react'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
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

describe('belfry/react: a loadMore() made while the owed page of a list shown again is on its way', () => {
  it('leaves no gap below the owed page', async () => {
    const server = startMockServer()
    const { client } = createClient(server)
    let latest = 130 // in the inbox before the list mounts
    const answered = new Set<unknown>()
    /** Answers every history request not answered yet, in the order sent, as a server does (20 by default, with `next`). */
    const answer = async () => {
      for (const h of server.sent('history') as (Frame & { before?: number; limit?: number; requestId: string })[]) {
        if (answered.has(h.requestId)) continue
        answered.add(h.requestId)
        const top = Math.min(latest, (h.before ?? latest + 1) - 1)
        const length = Math.min(top, h.limit ?? 20)
        const items = Array.from({ length }, (_, i) => note(top - i))
        server.peer.send({ type: 'history', items, ...(top > length ? { next: top - length + 1 } : {}), requestId: h.requestId })
      }
      await settle()
    }
    const sendUpTo = async (to: number) => {
      await act(async () => {
        while (latest < to) server.peer.send(note(++latest))
      })
      await settle()
    }
    let state = { seqs: [] as number[], hasMore: false, loading: false }
    let more: () => Promise<void> = async () => {}
    function List() {
      const list = useNotifications()
      more = list.loadMore
      state = { seqs: list.notifications.map((n) => n.seq), hasMore: list.hasMore, loading: list.loading }
      return null
    }
    const App = ({ mode }: { mode: 'visible' | 'hidden' }) => (
      <>
        <BelfryProvider client={client}>{null}</BelfryProvider>
        <Activity mode={mode}>
          <BelfryProvider client={client} maxItems={300}>
            <List />
          </BelfryProvider>
        </Activity>
      </>
    )
    const view = render(<App mode="visible" />)
    await settle()
    await answer() // the owed page of a client the bell's provider started: 130..31, next 31
    expect(state).toEqual({ seqs: Array.from({ length: 100 }, (_, i) => 130 - i), hasMore: true, loading: false })

    view.rerender(<App mode="hidden" />)
    await settle(100)
    await sendUpTo(300) // 170 come while the list is hidden
    view.rerender(<App mode="visible" />)
    await settle() // the owed page is asked for
    // The list's sentinel comes into view (or the user clicks "more"): hasMore is true and nothing is loading.
    expect(state).toMatchObject({ hasMore: true, loading: false })
    let loaded: Promise<void> | undefined
    act(() => {
      loaded = more()
    })
    await settle()
    // Answered in the order asked: the owed page (300..201, next 201), then loadMore()'s, below the stale
    // oldest item (31): 30..11.
    await answer()
    await act(() => loaded)
    expect(server.sent('history').slice(-2)).toMatchObject([{ limit: 100 }, { before: 31 }])
    // No gap: what follows 201 in the list is 200, not 30 (200..31 missing, loadMore() going on from 11).
    const seqs = state.seqs
    expect(seqs.slice(0, 100)).toEqual(Array.from({ length: 100 }, (_, i) => 300 - i))
    expect(seqs.filter((seq, i) => i > 0 && seq !== seqs[i - 1]! - 1)).toEqual([])
  })
})
