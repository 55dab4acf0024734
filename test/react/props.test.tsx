/**
 * The checks of `<BelfryProvider>`'s props and `useNotificationEvent`'s arguments, which run in development builds
 * (vitest sets NODE_ENV to `test`): a bad one is a TypeError that names it, what it got and what it must be, as the
 * client's option checks are. Without them a bad `maxItems` silently empties or shrinks the list, and a bad client
 * fails with the engine's "Cannot read properties of undefined", which names neither. (That production builds leave
 * them out: test/unit/size.test.ts.)
 */
import { act, render, cleanup as unmountAll } from '@testing-library/react'
import { Component, type ReactNode } from 'react'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type ClientEvents, NotificationClient } from '../../src/index.js'
import { BelfryProvider, useNotificationEvent, useNotifications, useUnreadCount } from '../../src/react/index.js'
import { cleanup, createClient, type MockServer, note, startMockServer, tick } from '../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
  // React logs what an error boundary catches.
  vi.spyOn(console, 'error').mockImplementation(() => {})
})
afterEach(() => {
  unmountAll()
  cleanup()
  vi.restoreAllMocks()
})

const settle = (ms = 20) => act(() => tick(ms))

/** Keeps what its children threw, in render or in an effect. */
class Catch extends Component<{ caught: unknown[]; children: ReactNode }, { failed: boolean }> {
  override state = { failed: false }
  static getDerivedStateFromError() {
    return { failed: true }
  }
  override componentDidCatch(error: unknown) {
    this.props.caught.push(error)
  }
  override render() {
    return this.state.failed ? null : this.props.children
  }
}

/** What the list and the unread count show. */
let shown: { items: number[]; hasMore: boolean; unread: number } | undefined
function Inbox() {
  const { notifications, hasMore } = useNotifications()
  shown = { items: notifications.map((n) => n.seq), hasMore, unread: useUnreadCount() }
  return null
}

/** Renders `element` in an error boundary, lets the effects and the mock server run, and hands back what it threw. */
async function thrown(element: ReactNode): Promise<unknown> {
  const caught: unknown[] = []
  render(<Catch caught={caught}>{element}</Catch>)
  await settle()
  unmountAll()
  return caught[0]
}

/** A provider of `server`'s clients with these props (client: a factory of them, unless given). */
const provider = (server: MockServer, props: Record<string, unknown>, children: ReactNode = <Inbox />) => (
  <BelfryProvider client={() => createClient(server).client} {...props}>
    {children}
  </BelfryProvider>
)

/** Expects a TypeError with exactly this message. */
const typeError = (error: unknown, message: string) => {
  expect(error).toBeInstanceOf(TypeError)
  expect((error as Error).message).toBe(message)
}

describe('BelfryProvider: a bad prop is a TypeError that names it, what it got and what it must be', () => {
  it.each([
    [undefined, 'undefined'],
    [null, 'null'],
    [{}, 'object'],
    ['ws://localhost/ws', '"ws://localhost/ws"'],
    [42, '42'],
  ])('client %j', async (client, shows) => {
    typeError(
      await thrown(provider(startMockServer(), { client })),
      `BelfryProvider: client must be a NotificationClient or a function that makes one; got ${shows}`,
    )
  })

  it('client: the class, not an instance (called without new, it would throw)', async () => {
    typeError(
      await thrown(provider(startMockServer(), { client: NotificationClient })),
      'BelfryProvider: client must be a NotificationClient or a function that makes one, not the class (() => new NotificationClient(…)); got function',
    )
  })

  it.each([
    [undefined, 'undefined'],
    [{}, 'object'],
  ])('client: a function that makes %j', async (made, shows) => {
    typeError(
      await thrown(provider(startMockServer(), { client: () => made })),
      `BelfryProvider: client() must be a NotificationClient; got ${shows}`,
    )
  })

  it.each([
    [Number.NaN, 'NaN'],
    [-1, '-1'],
    [-Infinity, '-Infinity'],
    [1.5, '1.5'],
    ['50', '"50"'],
    [null, 'null'],
  ])('maxItems %s (shown as %s)', async (maxItems, shows) => {
    typeError(
      await thrown(provider(startMockServer(), { maxItems })),
      `BelfryProvider: maxItems must be a whole number from 0, or Infinity; got ${shows}`,
    )
  })

  it('is thrown in server rendering too, before any client is made', async () => {
    const { renderToString } = await import('react-dom/server')
    const make = vi.fn()
    expect(() => renderToString(<BelfryProvider client={make} maxItems={-1} />)).toThrow(
      new TypeError('BelfryProvider: maxItems must be a whole number from 0, or Infinity; got -1'),
    )
    expect(make).not.toHaveBeenCalled()
  })
})

describe('BelfryProvider: the props it takes', () => {
  /** Mounts a provider with `props`, connects it, and sends it notifications 1 to 3. */
  async function mount(props: Record<string, unknown>) {
    const server = startMockServer({ auth: { unreadCount: 3 } })
    const caught: unknown[] = []
    render(<Catch caught={caught}>{provider(server, props)}</Catch>)
    await settle()
    for (const seq of [1, 2, 3]) await act(async () => server.peer.send(note(seq)))
    expect(caught).toEqual([])
    return server
  }

  it('maxItems 0: no list (a provider for a bell alone), the rest as usual', async () => {
    await mount({ maxItems: 0 })
    expect(shown).toEqual({ items: [], hasMore: false, unread: 6 })
  })

  it('maxItems Infinity: every one kept, and more to load', async () => {
    await mount({ maxItems: Number.POSITIVE_INFINITY })
    expect(shown).toEqual({ items: [3, 2, 1], hasMore: true, unread: 6 })
  })

  it('maxItems 2, or undefined (the default, 100)', async () => {
    await mount({ maxItems: 2 })
    expect(shown).toEqual({ items: [3, 2], hasMore: false, unread: 6 })
    unmountAll()
    await mount({ maxItems: undefined })
    expect(shown).toEqual({ items: [3, 2, 1], hasMore: true, unread: 6 })
  })

  it('client: an instance, or a plain function that makes one', async () => {
    const server = startMockServer()
    const { client } = createClient(server)
    expect(await thrown(provider(server, { client }))).toBeUndefined()
    expect(client.state).not.toBe('idle')
    expect(
      await thrown(
        provider(server, {
          client: function make() {
            return createClient(server).client
          },
        }),
      ),
    ).toBeUndefined()
  })
})

describe('useNotificationEvent: a bad argument is a TypeError that names it', () => {
  function Listener({ type, handler }: { type: unknown; handler: unknown }) {
    useNotificationEvent(type as keyof ClientEvents, handler as () => void)
    return null
  }

  it.each([
    ['notifications', '"notifications"'],
    ['toString', '"toString"'],
    [undefined, 'undefined'],
  ])('type %j: no event has it, so the handler would never be called', async (type, shows) => {
    typeError(
      await thrown(provider(startMockServer(), {}, <Listener type={type} handler={() => {}} />)),
      `useNotificationEvent: type must be one of "notification", "status", "read", "unread", "error"; got ${shows}`,
    )
  })

  it.each([
    [undefined, 'undefined'],
    ['toast', '"toast"'],
  ])('handler %j: it would throw at each event, inside the client', async (handler, shows) => {
    typeError(
      await thrown(provider(startMockServer(), {}, <Listener type="notification" handler={handler} />)),
      `useNotificationEvent: handler must be a function; got ${shows}`,
    )
  })

  it('takes each event of the client', async () => {
    const server = startMockServer()
    const calls: string[] = []
    const types: (keyof ClientEvents)[] = ['notification', 'status', 'read', 'unread', 'error']
    const caught: unknown[] = []
    render(
      <Catch caught={caught}>
        {provider(
          server,
          {},
          types.map((type) => <Listener key={type} type={type} handler={() => calls.push(type)} />),
        )}
      </Catch>,
    )
    await settle()
    await act(async () => server.peer.send(note(1)))
    expect(caught).toEqual([])
    expect(calls).toContain('status')
    expect(calls).toContain('notification')
  })
})
