/**
 * belfry/react in a DOM (happy-dom), against the mock server under fake
 * timers: the provider's lifecycle (StrictMode, close after the last unmount),
 * each hook's slice, and what each hook re-renders for.
 */
import { act, render, renderHook, cleanup as unmountAll } from '@testing-library/react'
import { Activity, type ReactNode, StrictMode, useState } from 'react'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { NotificationClient } from '../../src/index.js'
import {
  BelfryProvider,
  useBelfryClient,
  useConnectionState,
  useNotificationEvent,
  useNotifications,
  useUnreadCount,
} from '../../src/react/index.js'
import {
  cleanup,
  createClient,
  type Frame,
  jwt,
  type MockServer,
  note,
  type Recorded,
  startMockServer,
  tick,
} from '../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  unmountAll()
  cleanup()
})

/** Lets the mock server's 4 ms hops, the client's promises and React's updates run. */
const settle = (ms = 20) => act(() => tick(ms))

/** Starts `request` inside act (so its first update renders) and hands back its outcome: the value, or what it threw. */
async function begin(request: () => Promise<unknown>): Promise<() => Promise<unknown>> {
  let outcome: Promise<unknown> = Promise.resolve()
  await act(async () => {
    outcome = request().catch((e: unknown) => e)
  })
  return () => act(() => outcome)
}

/** A factory for clients of `server`, counting its calls. */
function factory(server: MockServer) {
  const made: NotificationClient[] = []
  const logs: Recorded[] = []
  const make = vi.fn(() => {
    const { client, log } = createClient(server)
    made.push(client)
    logs.push(log)
    return client
  })
  return { make, made, logs }
}

/**
 * Mounts a provider of `server`'s clients (with `props`) around `others` and
 * a component that keeps the useNotifications slice of its latest render:
 * `list()` reads it.
 */
async function mountList(props: { maxItems?: number } = {}, others?: ReactNode) {
  const server = startMockServer()
  const { make, made } = factory(server)
  let slice: ReturnType<typeof useNotifications> | undefined
  function List() {
    slice = useNotifications()
    return null
  }
  render(
    <BelfryProvider client={make} {...props}>
      {others}
      <List />
    </BelfryProvider>,
  )
  await settle()
  return { server, made, list: () => slice! }
}

function Inbox() {
  const { notifications, hasMore, loading } = useNotifications()
  const { state } = useConnectionState()
  return (
    <div>
      <p data-testid="state">{state}</p>
      <p data-testid="unread">{useUnreadCount()}</p>
      <p data-testid="more">{`${hasMore} ${loading}`}</p>
      <ul>
        {notifications.map((n) => (
          <li key={n.id} data-read={n.read}>
            {n.title}
          </li>
        ))}
      </ul>
    </div>
  )
}

/** Renders Inbox under StrictMode, in a provider of this client (or factory). */
const renderStrict = (client: NotificationClient | (() => NotificationClient)) =>
  render(
    <StrictMode>
      <BelfryProvider client={client}>
        <Inbox />
      </BelfryProvider>
    </StrictMode>,
  )

const text = (testId: string) => document.querySelector(`[data-testid="${testId}"]`)?.textContent
const titles = () => [...document.querySelectorAll('li')].map((li) => li.textContent)

/**
 * A bell always shown, and an inbox view <Activity> hides and shows: two providers of one client. `inbox()` is what
 * the inbox's list shows, its titles newest first.
 */
function bellAndInbox(client: ReturnType<typeof createClient>['client'], maxItems?: number) {
  let list!: ReturnType<typeof useNotifications>
  function List() {
    list = useNotifications()
    return null
  }
  const App = ({ mode }: { mode: 'visible' | 'hidden' }) => (
    <>
      <BelfryProvider client={client}>{null}</BelfryProvider>
      <Activity mode={mode}>
        <BelfryProvider client={client} maxItems={maxItems}>
          <List />
        </BelfryProvider>
      </Activity>
    </>
  )
  return { App, inbox: () => list.notifications.map((n) => n.title), list: () => list }
}

/**
 * A mock server whose user's inbox holds 1..`latest`, and a client of it. `answer()` answers each history request
 * not answered yet as a belfry server does (up to `limit`, 20 by default, below `before`, with `next` when older
 * ones exist); `sendUpTo(n)` sends the notifications up to n live; `unanswered()` lists the history requests not
 * answered yet, and a request put in `answered` is left to the test.
 */
function inboxServer(latest = 0) {
  const server = startMockServer()
  const { client } = createClient(server)
  const answered = new Set<unknown>()
  type History = Frame & { before?: number; limit?: number; requestId: string }
  const unanswered = () => (server.sent('history') as History[]).filter((h) => !answered.has(h.requestId))
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
  const sendUpTo = async (to: number) => {
    await act(async () => {
      while (latest < to) server.peer.send(note(++latest))
    })
    await settle()
  }
  return { server, client, answer, sendUpTo, answered, unanswered }
}

/** Calls loadMore() as a click does, lets its request go out, answers every request waiting, and waits for it. */
async function loadMoreAnswered(list: () => ReturnType<typeof useNotifications>, answer: () => Promise<void>): Promise<void> {
  let loaded: Promise<void> | undefined
  act(() => {
    loaded = list().loadMore()
  })
  await settle()
  await answer()
  await act(() => loaded)
}

describe('BelfryProvider', () => {
  it('connects on mount, and the hooks follow the client: state, unread count, the list', async () => {
    const server = startMockServer({ auth: { unreadCount: 2 } })
    const { make } = factory(server)
    render(
      <BelfryProvider client={make}>
        <Inbox />
      </BelfryProvider>,
    )
    expect(text('state')).toBe('connecting')
    await settle()
    expect(text('state')).toBe('online')
    expect(text('unread')).toBe('2')
    await act(async () => server.peer.send(note(1, { title: 'first' })))
    await act(async () => server.peer.send(note(2, { title: 'second' })))
    expect(titles()).toEqual(['second', 'first'])
    expect(text('unread')).toBe('4')
  })

  it('under StrictMode makes one client and one socket, and the unmount closes them a macrotask later', async () => {
    const server = startMockServer()
    const { make, made } = factory(server)
    const view = renderStrict(make)
    await settle()
    expect(make).toHaveBeenCalledTimes(1)
    expect(server.peers).toHaveLength(1)
    const client = made[0]!
    // StrictMode's unmount and remount of the effects did not close it.
    expect(client.state).toBe('online')
    expect(text('state')).toBe('online')

    view.unmount()
    expect(client.state).toBe('online') // not yet: a remount in this task would keep it
    await act(() => vi.advanceTimersByTimeAsync(0))
    expect(client.state).toBe('closed')
    await settle()
    expect(server.peer.closed).toBe(true)
    expect(server.peers).toHaveLength(1)
  })

  it('takes a client instance, and closes it only when the last of its providers unmounts', async () => {
    const server = startMockServer()
    const { client } = createClient(server)
    function Two({ both }: { both: boolean }) {
      return (
        <>
          <BelfryProvider client={client}>
            <Inbox />
          </BelfryProvider>
          {both && <BelfryProvider client={client}>{null}</BelfryProvider>}
        </>
      )
    }
    const view = render(<Two both={true} />)
    await settle()
    expect(server.peers).toHaveLength(1)
    view.rerender(<Two both={false} />)
    await settle()
    expect(client.state).toBe('online')
    view.unmount()
    await settle()
    expect(client.state).toBe('closed')
  })

  it('takes its listeners off a client instance when it unmounts, while another provider of it stays', async () => {
    const server = startMockServer()
    const { client } = createClient(server)
    // Counts the subscriptions on the client.
    let live = 0
    const on = client.on.bind(client)
    client.on = ((type: never, handler: never) => {
      live++
      const off = on(type, handler)
      return () => {
        live--
        off()
      }
    }) as typeof client.on
    function Two({ both }: { both: boolean }) {
      return (
        <>
          <BelfryProvider client={client}>
            <Inbox />
          </BelfryProvider>
          {both && (
            <BelfryProvider client={client}>
              <Inbox />
            </BelfryProvider>
          )}
        </>
      )
    }
    const view = render(<Two both={false} />)
    await settle()
    const one = live
    for (let i = 0; i < 5; i++) {
      view.rerender(<Two both={true} />)
      await settle()
      view.rerender(<Two both={false} />)
      await settle()
    }
    expect(live).toBe(one)
    expect(client.state).toBe('online')
    await act(async () => server.peer.send(note(1, { title: 'still followed' })))
    expect(document.body.textContent).toContain('still followed')
  })

  it('remounted (keyed anew) on a client instance still online, loads the newest page: its list is not left empty', async () => {
    const server = startMockServer()
    const { client } = createClient(server)
    const App = ({ layout }: { layout: string }) => (
      <BelfryProvider key={layout} client={client}>
        <Inbox />
      </BelfryProvider>
    )
    const view = render(<App layout="a" />)
    await settle()
    for (const seq of [1, 2]) await act(async () => server.peer.send(note(seq)))
    expect(titles()).toEqual(['title 2', 'title 1'])
    expect(server.sent('history')).toHaveLength(0)
    // The app's layout changes: a new provider mounts on the same client, still online (one socket throughout).
    view.rerender(<App layout="b" />)
    await settle()
    expect(client.state).toBe('online')
    expect(server.peers).toHaveLength(1)
    // Its store saw none of what came before: it asks for the newest page, as loadMore() on an empty list does.
    expect(server.sent('history')).toHaveLength(1)
    const h = server.sent('history')[0]!
    expect(h).not.toHaveProperty('before')
    await act(async () => server.peer.send({ type: 'history', items: [note(2), note(1)], requestId: h.requestId }))
    expect({ unread: text('unread'), titles: titles(), more: text('more') }).toEqual({
      unread: '2',
      titles: ['title 2', 'title 1'],
      more: 'false false',
    })
  })

  it('shown again by <Activity> on a client online meanwhile, loads the newest page: what came while it was hidden', async () => {
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
    const { App, inbox } = bellAndInbox(client)
    const view = render(<App mode="visible" />)
    await settle()
    expect(client.state).toBe('online')
    await act(async () => {
      send(1)
      send(2)
    })
    await settle()
    await answer()
    expect(inbox()).toEqual(['title 2', 'title 1'])

    view.rerender(<App mode="hidden" />)
    await settle(100)
    expect(client.state).toBe('online') // the bell's provider holds it
    await act(async () => send(3)) // comes while the inbox is hidden
    await settle()

    view.rerender(<App mode="visible" />)
    await settle()
    await answer()
    // The provider found its client online: the newest page (no `before`) is what it loads.
    expect(server.sent('history').at(-1)).not.toHaveProperty('before')
    expect(inbox()).toEqual(['title 3', 'title 2', 'title 1'])
  })

  it('shown again by <Activity> after more than a page came while hidden (maxItems 300): the list is the newest page, no gap, and loadMore() goes on below it', async () => {
    const { client, answer, sendUpTo } = inboxServer()
    const { App, list } = bellAndInbox(client, 300)
    const view = render(<App mode="visible" />)
    await settle()
    await answer() // the owed page of a client the bell's provider started: empty
    await sendUpTo(50)
    expect(list().notifications).toHaveLength(50)

    view.rerender(<App mode="hidden" />)
    await settle(100)
    await sendUpTo(200) // 150 come while the list is hidden: more than the newest page holds
    view.rerender(<App mode="visible" />)
    await settle()
    await answer()
    const seqs = () => list().notifications.map((n) => n.seq)
    // The newest page, 200..101; not 1..50 below it with 51..100 missing.
    expect(seqs()).toEqual(Array.from({ length: 100 }, (_, i) => 200 - i))
    await loadMoreAnswered(list, answer)
    expect(seqs()).toEqual(Array.from({ length: 120 }, (_, i) => 200 - i))
  })

  // Regression: asked below the list's stale oldest item, its answer, merged after the owed page, put the gap back.
  it('shown again by <Activity> (maxItems 300): a loadMore() made while the owed page is on its way leaves no gap below it', async () => {
    const { server, client, answer, sendUpTo } = inboxServer(130) // 130 in the inbox before the list mounts
    const { App, list } = bellAndInbox(client, 300)
    const seqs = () => list().notifications.map((n) => n.seq)
    const view = render(<App mode="visible" />)
    await settle()
    await answer() // the owed page of a client the bell's provider started: 130..31, next 31
    expect([seqs(), list().hasMore, list().loading]).toEqual([Array.from({ length: 100 }, (_, i) => 130 - i), true, false])

    view.rerender(<App mode="hidden" />)
    await settle(100)
    await sendUpTo(300) // 170 come while the list is hidden
    view.rerender(<App mode="visible" />)
    await settle() // the owed page is asked for
    // The list's sentinel comes into view (or the user clicks "more") while nothing is loading.
    expect(list().loading).toBe(false)
    // Answered in the order asked: the owed page (300..201, next 201), then loadMore()'s: the newest page too,
    // not the one below the stale oldest item (31).
    await loadMoreAnswered(list, answer)
    expect(
      server
        .sent('history')
        .slice(-2)
        .map((h) => h.before),
    ).toEqual([undefined, undefined])
    // No gap: what follows 201 in the list is 200, not 30 (200..31 missing, loadMore() going on from 11).
    const now = seqs()
    expect(now.slice(0, 100)).toEqual(Array.from({ length: 100 }, (_, i) => 300 - i))
    expect(now.filter((seq, i) => i > 0 && seq !== now[i - 1]! - 1)).toEqual([])
  })

  // Regression: the newest page owed to the list failed, and every loadMore() asked for the newest page again, its
  // answer never paying the debt: the list never grew past it until the next 'online'.
  it('a loadMore() after the owed newest page failed pays the debt, and the next loads below the list', async () => {
    const { server, client, answer, answered, unanswered } = inboxServer(130)
    client.connect() // the app connects its client itself: the provider finds it started, and owes the list the newest page
    await settle()
    expect(client.state).toBe('online')
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
    // The newest page, as owed: 100.
    expect(list.notifications.map((n) => n.seq)).toEqual(Array.from({ length: 100 }, (_, i) => 130 - i))
    expect(list.hasMore).toBe(true)

    act(() => {
      loading = list.loadMore()
    })
    loading!.catch(() => {}) // rejected by the cleanup, should the expectation below fail first
    await settle()
    // The page below the list's oldest (31), not the newest page again.
    expect(unanswered().map((h) => h.before)).toEqual([31])
    await answer()
    await act(() => loading)
    expect(list.notifications.map((n) => n.seq)).toEqual(Array.from({ length: 120 }, (_, i) => 130 - i))
  })

  // Regression: the newest page, asked by a loadMore() made before online and by online(), was merged as owed twice;
  // the second, read after one more publish, dropped the list's oldest after a loadMore() below it was sent.
  it('a second answer of the owed page, after the debt is paid and a loadMore() below the list is sent, leaves no gap', async () => {
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

  it('shown again by <Activity> while a page of read flags asked before it hid is on its way: that page reads, the owed one merges', async () => {
    const server = startMockServer()
    const { client } = createClient(server)
    const { App, inbox } = bellAndInbox(client)
    /** Answers the history request at `index` with the page `items`. */
    const answer = async (index: number, items: Frame[]) => {
      const h = server.sent('history')[index] as Frame & { requestId: string }
      server.peer.send({ type: 'history', items, requestId: h.requestId })
      await settle()
    }
    const view = render(<App mode="visible" />)
    await settle()
    expect(client.state).toBe('online')
    await answer(0, [note(2), note(1)]) // the inbox's owed page: its client was started by the bell's provider
    expect(inbox()).toEqual(['title 2', 'title 1'])

    // The server restarts (1001): back online, the inbox asks for the newest page's read flags, slow to come.
    await act(async () => server.peer.close(1001, 'going away'))
    await settle(2000)
    expect(client.state).toBe('online')
    expect(server.sent('history')).toHaveLength(2)
    view.rerender(<App mode="hidden" />)
    await settle(100)
    await act(async () => server.peer.send(note(3))) // comes while the inbox is hidden
    view.rerender(<App mode="visible" />)
    await settle()
    // Shown again on its client online: the newest page, owed.
    expect(server.sent('history')).toHaveLength(3)
    // The read flags' page, read before 3 came, arrives first; then the owed page, with 3.
    await answer(1, [note(2), note(1)])
    await answer(2, [note(3), note(2), note(1)])
    expect(inbox()).toEqual(['title 3', 'title 2', 'title 1'])
  })

  it('remounted (keyed anew) while its connected client reconnects, loads the newest page once online', async () => {
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
    function List() {
      const titles = useNotifications().notifications.map((n) => n.title)
      seen = { titles, unread: useUnreadCount() }
      return null
    }
    const App = ({ page }: { page: string }) => (
      <BelfryProvider key={page} client={client}>
        <List />
      </BelfryProvider>
    )
    client.connect() // the app connects its client itself
    await settle()
    expect(client.state).toBe('online')

    // Mounted on the online client: the newest page.
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

  it('under StrictMode asks for the newest page once, on a client found online; none for a client it starts', async () => {
    const server = startMockServer()
    const { client } = createClient(server)
    client.connect()
    await settle()
    render(
      <StrictMode>
        <BelfryProvider client={client}>
          <Inbox />
        </BelfryProvider>
        <BelfryProvider client={factory(server).make}>{null}</BelfryProvider>
      </StrictMode>,
    )
    await settle(100)
    expect(server.peers).toHaveLength(2)
    // One page, the newest, for the first provider's list; the second's client, which it started, owes none.
    expect(server.sent('history')).toHaveLength(1)
    expect(server.sent('history')[0]).not.toHaveProperty('before')
  })

  it('follows a client the app connected before the provider mounted', async () => {
    const server = startMockServer({ auth: { unreadCount: 3 } })
    const { client } = createClient(server)
    client.connect()
    await tick()
    render(
      <BelfryProvider client={client}>
        <Inbox />
      </BelfryProvider>,
    )
    expect(text('state')).toBe('online')
    expect(text('unread')).toBe('3')
  })

  it('keeps the client while the provider re-renders with a new factory function', async () => {
    const server = startMockServer()
    const made: NotificationClient[] = []
    function App() {
      const [n, setN] = useState(0)
      return (
        <BelfryProvider
          client={() => {
            const { client } = createClient(server)
            made.push(client)
            return client
          }}
        >
          <button type="button" onClick={() => setN(n + 1)}>
            {n}
          </button>
        </BelfryProvider>
      )
    }
    render(<App />)
    await settle()
    await act(async () => document.querySelector('button')?.click())
    await act(async () => document.querySelector('button')?.click())
    await settle()
    expect(document.querySelector('button')?.textContent).toBe('2')
    expect(made).toHaveLength(1)
    expect(server.peers).toHaveLength(1)
  })
})

// Production runs each effect once; StrictMode runs the provider's twice (mount, unmount, mount) in development. A
// client found started but not yet online owes the list the newest page across that unmount: only an online client
// is asked for it, so the first run leaves the request to its status listener, which the unmount takes off, and the
// second run must still owe it. Each test also counts the requests: one page, not one per run.
describe('BelfryProvider under StrictMode, on a client started but not yet online', () => {
  /** Answers each history request of `server` not answered yet with `page`, as the server's newest page. */
  function historyOf(server: MockServer, page: { items: Frame[]; next?: number }) {
    const answered = new Set<unknown>()
    return async () => {
      for (const h of server.sent('history') as (Frame & { requestId: string })[]) {
        if (answered.has(h.requestId)) continue
        answered.add(h.requestId)
        server.peer.send({ type: 'history', ...page, requestId: h.requestId })
      }
      await settle()
    }
  }
  /** What Inbox shows. */
  const shown = () => ({ unread: text('unread'), titles: titles(), more: text('more') })

  it('connected by the app just before the provider mounts: the newest page, asked for once, when the client is online', async () => {
    // The user's inbox: 1 and 2, both unread; the newest page is all of it.
    const server = startMockServer({ auth: { seq: 2, unreadCount: 2 } })
    const answer = historyOf(server, { items: [note(2), note(1)] })
    const { client } = createClient(server)
    client.connect()
    renderStrict(client)
    expect(client.state).toBe('connecting')
    await settle()
    expect(client.state).toBe('online')
    expect(server.sent('history')).toHaveLength(1)
    expect(server.sent('history')[0]).not.toHaveProperty('before')
    await answer()
    // Not an empty list beside 2 unread; `hasMore` false: that page is the whole inbox.
    expect(shown()).toEqual({ unread: '2', titles: ['title 2', 'title 1'], more: 'false false' })
    await settle(1000)
    expect(server.sent('history')).toHaveLength(1)
  })

  it('keyed anew while its client reconnects: the newest page, asked for once, when the client is back online', async () => {
    const server = startMockServer({ auth: { seq: 3, unreadCount: 3 } })
    // A page the server cut short: it has more below 2.
    const answer = historyOf(server, { items: [note(3), note(2)], next: 2 })
    const { client } = createClient(server)
    // (StrictMode around a provider keyed anew runs its effects twice.)
    const App = ({ page }: { page: string }) => (
      <StrictMode>
        <BelfryProvider key={page} client={client}>
          <Inbox />
        </BelfryProvider>
      </StrictMode>
    )
    client.connect()
    await settle()
    const view = render(<App page="a" />)
    await settle()
    await answer()
    expect(server.sent('history')).toHaveLength(1)

    // The server restarts (1001): the client reconnects; the app's route changes meanwhile, a new provider.
    await act(async () => server.peer.close(1001, 'going away'))
    await settle()
    expect(client.state).toBe('reconnecting')
    view.rerender(<App page="b" />)
    await settle(1000)
    expect(client.state).toBe('online')
    expect(server.sent('history')).toHaveLength(2)
    await answer()
    expect(shown()).toEqual({ unread: '3', titles: ['title 3', 'title 2'], more: 'true false' })
    await settle(1000)
    expect(server.sent('history')).toHaveLength(2)
  })

  it('a user switch to a client the login handler connected: the new user’s newest page, asked for once, none of the previous user’s list', async () => {
    // One mock server per user: what each user's socket gets. Alice's inbox holds 1; bob's, 1 and 2.
    const servers = {
      alice: startMockServer({ auth: { seq: 1, unreadCount: 1 } }),
      bob: startMockServer({ auth: { seq: 2, unreadCount: 2 } }),
    }
    const answers = {
      alice: historyOf(servers.alice, { items: [note(1, { id: 'a1', title: 'alice 1' })] }),
      bob: historyOf(servers.bob, { items: [note(2, { id: 'b2', title: 'bob 2' }), note(1, { id: 'b1', title: 'bob 1' })] }),
    }
    let api: ReturnType<typeof useNotifications> | undefined
    function Api() {
      api = useNotifications()
      return null
    }
    // The app keys the provider by user. (StrictMode around a provider keyed anew runs its effects twice.)
    const App = ({ user, client }: { user: string; client: NotificationClient | (() => NotificationClient) }) => (
      <StrictMode>
        <BelfryProvider key={user} client={client}>
          <Inbox />
          <Api />
        </BelfryProvider>
      </StrictMode>
    )
    // Alice's list: her client, which the provider makes and starts, gets 2 live, and loadMore() her page below it.
    const { make, made } = factory(servers.alice)
    const view = render(<App user="alice" client={make} />)
    await settle()
    await act(async () => servers.alice.peer.send(note(2, { id: 'a2', title: 'alice 2' })))
    const loaded = await begin(() => api!.loadMore())
    await settle()
    await answers.alice()
    await loaded()
    expect(shown()).toEqual({ unread: '2', titles: ['alice 2', 'alice 1'], more: 'false false' })

    // Alice signs out, bob signs in: the login handler makes bob's client, connects it, and renders the app with it.
    const bob = createClient(servers.bob).client
    bob.connect()
    view.rerender(<App user="bob" client={bob} />)
    expect(bob.state).toBe('connecting')
    await settle()
    expect([made[0]!.state, bob.state]).toEqual(['closed', 'online'])
    expect(servers.bob.sent('history')).toHaveLength(1)
    expect(servers.bob.sent('history')[0]).not.toHaveProperty('before')
    await answers.bob()
    // Bob's page alone: the new provider's list has none of alice's.
    expect(shown()).toEqual({ unread: '2', titles: ['bob 2', 'bob 1'], more: 'false false' })
    await settle(1000)
    expect([servers.alice.sent('history'), servers.bob.sent('history')].map((h) => h.length)).toEqual([1, 1])
  })

  it('an idle client the provider starts owes nothing: no history request, an empty list', async () => {
    const server = startMockServer({ auth: { seq: 2, unreadCount: 2 } })
    const { client } = createClient(server)
    renderStrict(client)
    await settle(1000)
    expect(client.state).toBe('online')
    // Its store saw all of it: what the server sends from here reaches the list.
    expect(server.sent('history')).toHaveLength(0)
    expect(shown()).toEqual({ unread: '2', titles: [], more: 'true false' })
  })
})

// A provider that finds its client online owes the list the newest page; one that fails is owed still, and asked for
// again at the next 'online'. Under StrictMode the first run of the provider's effect asks for it, and the second run
// must keep the debt (without asking twice): the page that failed was asked for by a run whose listeners are gone.
describe('BelfryProvider on a client found online whose newest page fails', () => {
  /** Answers each history request of `server` not answered yet: the first with an `internal` error, the others with `items`. */
  function failFirst(server: MockServer, items: Frame[]) {
    const answered = new Set<unknown>()
    return async () => {
      for (const h of server.sent('history') as (Frame & { requestId: string })[]) {
        if (answered.has(h.requestId)) continue
        server.peer.send(
          answered.size === 0
            ? { type: 'error', code: 'internal', message: 'the store failed', requestId: h.requestId }
            : { type: 'history', items, requestId: h.requestId },
        )
        answered.add(h.requestId)
      }
      await settle()
    }
  }

  /** Mounts Inbox (wrapped by `wrap`) on a client found online, fails its page, and brings the client online again. */
  async function failThenOnlineAgain(wrap: (provider: ReactNode) => ReactNode) {
    // The user's inbox: 1 and 2, both unread; the newest page is all of it.
    const server = startMockServer({ auth: { seq: 2, unreadCount: 2 } })
    const answer = failFirst(server, [note(2), note(1)])
    const { client } = createClient(server)
    client.connect()
    await settle()
    expect(client.state).toBe('online')
    render(
      wrap(
        <BelfryProvider client={client}>
          <Inbox />
        </BelfryProvider>,
      ),
    )
    await settle()
    // Asked for once (under StrictMode too), and it fails.
    expect(server.sent('history')).toHaveLength(1)
    await answer()
    expect([text('unread'), titles()]).toEqual(['2', []])

    // The server restarts (1001): the client is online again, and the page still owed is asked for again.
    await act(async () => server.peer.close(1001, 'going away'))
    await settle(2000)
    expect(client.state).toBe('online')
    expect(server.sent('history')).toHaveLength(2)
    expect(server.sent('history')[1]).not.toHaveProperty('before')
    await answer()
    expect([text('unread'), titles(), text('more')]).toEqual(['2', ['title 2', 'title 1'], 'false false'])
    await settle(1000)
    expect(server.sent('history')).toHaveLength(2)
  }

  it('asks for it again at the next online', async () => {
    await failThenOnlineAgain((provider) => provider)
  })

  it('under StrictMode, asks for it again at the next online, as without it', async () => {
    await failThenOnlineAgain((provider) => <StrictMode>{provider}</StrictMode>)
  })
})

describe('hooks', () => {
  it('throw outside a provider, saying there is no <BelfryProvider>', () => {
    vi.spyOn(console, 'error').mockImplementation(() => {}) // React logs the error it rethrows
    expect(() => renderHook(() => useUnreadCount())).toThrow('No <BelfryProvider>')
  })

  it('useUnreadCount: a component renders again only when the count changes', async () => {
    let renders = 0
    function Badge() {
      renders++
      return <span data-testid="badge">{useUnreadCount()}</span>
    }
    const { server, made, list } = await mountList({}, <Badge />)
    const before = renders
    // Unrelated changes: a history page, a read event for an already read one, a reconnect.
    const loaded = await begin(() => list().loadMore())
    await tick()
    const h = server.sent('history')[0]!
    server.peer.send({ type: 'history', items: [note(1, { read: true })], requestId: h.requestId })
    await loaded()
    expect(list().notifications).toHaveLength(1)
    await act(async () => server.peer.send({ type: 'read', ids: ['n1'], all: false, seq: 1, unreadCount: 0 }))
    await act(async () => server.peer.close(1006))
    await settle(300)
    expect(made[0]!.state).toBe('online')
    expect(renders).toBe(before)
    // Its own change: exactly one more render.
    await act(async () => server.peer.send(note(2)))
    expect(text('badge')).toBe('1')
    expect(renders).toBe(before + 1)
  })

  it('useUnreadCount: 0 as soon as the token names another user, not the last user’s count until that user is online', async () => {
    let user = 'u1'
    // u2's auth is answered only when the test says.
    const server = startMockServer({ auth: (peer, f) => f.userId === 'u1' && peer.authSuccess({ seq: 5, unreadCount: 3 }) })
    const { client } = createClient(server, { token: () => jwt(user), backoff: () => 100 })
    const Badge = () => <span data-testid="badge">{useUnreadCount()}</span>
    render(
      <BelfryProvider client={client}>
        <Badge />
      </BelfryProvider>,
    )
    await settle()
    expect(text('badge')).toBe('3')
    user = 'u2'
    await act(async () => server.peer.close(1006))
    await settle(200)
    expect([client.state, text('badge')]).toEqual(['authenticating', '0'])
    await act(async () => server.peer.authSuccess({ seq: 1, unreadCount: 1 }))
    await settle()
    expect(text('badge')).toBe('1')
  })

  it('useNotifications: newest first, each id once, capped at maxItems; loadMore pages back from the oldest', async () => {
    const { server, list } = await mountList({ maxItems: 4 })
    for (const seq of [5, 6]) await act(async () => server.peer.send(note(seq)))
    expect(list().notifications.map((n) => n.seq)).toEqual([6, 5])

    // The first page overlaps nothing: it starts before the oldest shown.
    const first = await begin(() => list().loadMore())
    expect(list().loading).toBe(true)
    await tick()
    const h1 = server.sent('history')[0]!
    expect(h1).toMatchObject({ before: 5 })
    server.peer.send({ type: 'history', items: [note(4), note(3)], next: 3, requestId: h1.requestId })
    await first()
    expect(list().notifications.map((n) => n.seq)).toEqual([6, 5, 4, 3])
    expect(list().loading).toBe(false)
    // Full: the server has more, but the list holds maxItems.
    expect(list().hasMore).toBe(false)

    // A duplicate id and a newer one: the newest four stay, each once.
    await act(async () => server.peer.send(note(7)))
    expect(list().notifications.map((n) => n.seq)).toEqual([7, 6, 5, 4])
  })

  it('useNotifications: the newest page first when the list is empty, a page merged by id, hasMore false after the last page', async () => {
    const { server, list } = await mountList()
    expect(list().hasMore).toBe(true)
    const loaded = await begin(() => list().loadMore())
    await tick()
    const h = server.sent('history')[0]!
    expect(h).not.toHaveProperty('before')
    // A live one arrives while the page is on its way; the page has it too, already read.
    server.peer.send(note(3))
    server.peer.send({ type: 'history', items: [note(3, { read: true }), note(2), note(1)], requestId: h.requestId })
    await loaded()
    expect(list().notifications.map((n) => [n.seq, n.read])).toEqual([
      [3, true],
      [2, false],
      [1, false],
    ])
    expect(list().hasMore).toBe(false)
  })

  it("useNotifications: against the article's server (no id, no seq), every notification that came, newest first", async () => {
    // The article's service: its auth_success has no seq; its frames are {type, ...fields, timestamp}.
    const server = startMockServer({ auth: (peer) => peer.send({ type: 'auth_success', message: 'Connected to notification service' }) })
    const { make } = factory(server)
    let slice: ReturnType<typeof useNotifications> | undefined
    function List() {
      slice = useNotifications()
      return null
    }
    render(
      <BelfryProvider client={make}>
        <List />
      </BelfryProvider>,
    )
    await settle()
    for (const [i, title] of ['one', 'two', 'three'].entries()) {
      server.peer.send({
        type: 'notification',
        title,
        body: `body ${title}`,
        timestamp: new Date(Date.UTC(2024, 0, 1, 0, 0, i)).toISOString(),
      })
      await settle()
    }
    expect(slice!.notifications.map((n) => n.title)).toEqual(['three', 'two', 'one'])
  })

  it('useNotifications: loadMore rejects as history() does, and loading ends', async () => {
    const { server, list } = await mountList()
    const loaded = await begin(() => list().loadMore())
    expect(list().loading).toBe(true)
    await tick()
    const h = server.sent('history')[0]!
    server.peer.send({ type: 'error', code: 'bad_request', message: 'no', requestId: h.requestId })
    expect(await loaded()).toMatchObject({ name: 'ProtocolError', message: 'no' })
    expect(list().loading).toBe(false)
    expect(list().hasMore).toBe(true)
  })

  it('useNotifications: read events set read flags (by id, or all up to a seq); markRead and markAllRead go through the client', async () => {
    const { server, list } = await mountList()
    for (const seq of [1, 2, 3]) await act(async () => server.peer.send(note(seq)))
    const reads = () => list().notifications.map((n) => n.read)

    const marking = await begin(() => list().markRead('n2'))
    await tick()
    const m = server.sent('mark_read')[0]!
    expect(m).toMatchObject({ ids: ['n2'] })
    server.peer.send({ type: 'read', ids: ['n2'], all: false, seq: 3, unreadCount: 2, requestId: m.requestId })
    await marking()
    expect(reads()).toEqual([false, true, false])

    // A read event that touches none of the list leaves the slice as it was.
    const same = list()
    await act(async () => server.peer.send({ type: 'read', ids: ['elsewhere'], all: false, seq: 3, unreadCount: 2 }))
    expect(list()).toBe(same)

    const all = await begin(() => list().markAllRead())
    await tick()
    const a = server.sent('mark_read')[1]!
    expect(a).toMatchObject({ all: true })
    server.peer.send({ type: 'read', ids: [], all: true, seq: 2, unreadCount: 1, requestId: a.requestId })
    await all()
    expect(reads()).toEqual([false, true, true])
  })

  it('useNotifications: back online, the newest page sets the read flags of reads made while away (unread to read only)', async () => {
    const { server, list } = await mountList()
    // Online with an empty list: nothing to refresh, nothing asked.
    expect(server.sent('history')).toEqual([])
    for (const seq of [1, 2, 3]) await act(async () => server.peer.send(note(seq)))
    await act(async () => server.peer.send({ type: 'read', ids: ['n3'], all: false, seq: 3, unreadCount: 2 }))
    const reads = () => list().notifications.map((n) => [n.seq, n.read])

    // Away, another device reads n2 of the two unread: the server tells this client of it by no read event.
    await act(async () => server.peer.close(1006))
    await settle(300)
    expect(server.peers).toHaveLength(2)
    const h = server.sent('history')[0]!
    expect(h).toMatchObject({ limit: 100 })
    expect(h).not.toHaveProperty('before')
    // The page says n2 is read; its n3 unread (a stale page) leaves n3 read.
    server.peer.send({ type: 'history', items: [note(3), note(2, { read: true }), note(1)], requestId: h.requestId })
    await settle()
    expect(reads()).toEqual([
      [3, true],
      [2, true],
      [1, false],
    ])

    // A page that fails is swallowed (no unhandled rejection), and the list stays as it was.
    const before = list()
    await act(async () => server.peer.close(1006))
    await settle(2000)
    const failed = server.sent('history')[1]!
    server.peer.send({ type: 'error', code: 'internal', message: 'no', requestId: failed.requestId })
    await settle()
    expect(list()).toBe(before)
    expect(server.peers).toHaveLength(3)
  })

  it('useConnectionState: the status event and when it came, to count down to the next try', async () => {
    const server = startMockServer()
    const { make, logs } = factory(server)
    let connection: ReturnType<typeof useConnectionState> | undefined
    function Status() {
      connection = useConnectionState()
      return null
    }
    render(
      <BelfryProvider client={make}>
        <Status />
      </BelfryProvider>,
    )
    await settle()
    expect(connection).toMatchObject({ state: 'online', event: { from: 'authenticating', to: 'online' } })
    await act(async () => server.peer.close(1006))
    await act(() => tick(5))
    expect(connection!.state).toBe('reconnecting')
    const event = logs[0]!.statuses.at(-1)!
    expect(connection!.event).toBe(event)
    expect(event).toMatchObject({ to: 'reconnecting', retryIn: 250 })
    // The next try is due at since + retryIn.
    expect(connection!.since).toBe(logs[0]!.statusTimes.at(-1))
    await act(() => vi.advanceTimersByTimeAsync(connection!.since! + 250 - Date.now() - 1))
    expect(connection!.state).toBe('reconnecting')
    await act(() => vi.advanceTimersByTimeAsync(1))
    expect(connection!.state).toBe('connecting')
  })

  it('useBelfryClient: undefined until the provider makes the client, then the client', async () => {
    const server = startMockServer()
    const { make, made } = factory(server)
    const seen: (NotificationClient | undefined)[] = []
    function Probe() {
      seen.push(useBelfryClient())
      return null
    }
    render(
      <BelfryProvider client={make}>
        <Probe />
      </BelfryProvider>,
    )
    await settle()
    expect(seen[0]).toBeUndefined()
    expect(seen.at(-1)).toBe(made[0])
  })
})

describe('useNotificationEvent', () => {
  it('calls the handler of the latest render, without subscribing again', async () => {
    const server = startMockServer()
    const { make, made } = factory(server)
    const calls: string[] = []
    function Toasts({ label }: { label: string }) {
      useNotificationEvent('notification', (n) => calls.push(`${label}: ${n.title}`))
      return null
    }
    const tree = (label: string) => (
      <BelfryProvider client={make}>
        <Toasts label={label} />
      </BelfryProvider>
    )
    const view = render(tree('first'))
    await settle()
    const on = vi.spyOn(made[0]!, 'on')
    view.rerender(tree('second'))
    await act(async () => server.peer.send(note(1)))
    expect(calls).toEqual(['second: title 1'])
    expect(on).not.toHaveBeenCalled()
    view.unmount()
    server.peer.send(note(2))
    expect(calls).toHaveLength(1)
  })

  it('is subscribed before the provider connects: it sees the first status event', async () => {
    const server = startMockServer()
    const { make } = factory(server)
    const states: string[] = []
    function Log() {
      useNotificationEvent('status', (e) => states.push(e.to))
      return null
    }
    render(
      <BelfryProvider client={make}>
        <Log />
      </BelfryProvider>,
    )
    await settle()
    expect(states).toEqual(['connecting', 'authenticating', 'online'])
  })
})
