import { WebSocket as MockWebSocket } from 'mock-socket'
import { describe, expectTypeOf, it } from 'vitest'
import WsWebSocket from 'ws'
import {
  type AuthError,
  type BelfryError,
  type ConnectionState,
  type HistoryPage,
  type Notification,
  NotificationClient,
  ProtocolError,
  type ReadEvent,
  type StatusEvent,
  type WebSocketLike,
} from '../../src/index.js'
import { NotificationServer } from '../../src/server/index.js'

type Deploy = { service: string; version: string }
const client = new NotificationClient<Deploy>({ url: 'ws://localhost/ws', token: () => 'token' })

describe('NotificationClient types', () => {
  it('types notification data by the generic', () => {
    client.on('notification', (n) => {
      expectTypeOf(n).toEqualTypeOf<Notification<Deploy>>()
      expectTypeOf(n.data).toEqualTypeOf<Deploy | undefined>()
      // @ts-expect-error not a field of Deploy
      n.data?.nope
    })
  })

  it('types every event payload and refuses unknown events', () => {
    client.on('status', (e) => expectTypeOf(e).toEqualTypeOf<StatusEvent>())
    client.on('unread', (e) => expectTypeOf(e.count).toEqualTypeOf<number>())
    client.on('read', (e) => expectTypeOf(e.ids).toEqualTypeOf<string[]>())
    client.on('error', (e) => expectTypeOf(e).toEqualTypeOf<BelfryError>())
    // @ts-expect-error no such event
    client.on('notifications', () => {})
    // @ts-expect-error wrong payload type for 'unread'
    client.on('unread', (e: { count: string }) => e)
    expectTypeOf(client.on('status', () => {})).toEqualTypeOf<() => void>()
  })

  it('types the state, requests and options', () => {
    expectTypeOf(client.state).toEqualTypeOf<ConnectionState>()
    expectTypeOf(client.history({ limit: 5 }))
      .resolves.toHaveProperty('items')
      .toEqualTypeOf<Notification<Deploy>[]>()
    expectTypeOf(client.markRead).parameter(0).toEqualTypeOf<string | string[]>()
    expectTypeOf(client.subscribe('deploys')).toEqualTypeOf<() => void>()
    // @ts-expect-error the url is required
    new NotificationClient({ token: 't' })
    // @ts-expect-error a token must be a string or yield one
    new NotificationClient({ url: 'ws://x', token: 42 })
    expectTypeOf<AuthError>().toMatchTypeOf<BelfryError>()
    // A refused subscription's topic: on a ProtocolError, which an `error` handler narrows to.
    client.on('error', (e) => {
      if (e instanceof ProtocolError) expectTypeOf(e.topic).toEqualTypeOf<string | undefined>()
      // @ts-expect-error only a ProtocolError names a topic
      void e.topic
    })
  })
})

describe('types that fit what apps write', () => {
  it('takes the browser’s WebSocket, ws’s and mock-socket’s constructors without a cast', () => {
    new NotificationClient({ url: 'ws://x', token: 't', WebSocket: WsWebSocket })
    new NotificationClient({ url: 'ws://x', token: 't', WebSocket: globalThis.WebSocket })
    new NotificationClient({ url: 'ws://x', token: 't', WebSocket: MockWebSocket })
    expectTypeOf(WsWebSocket).toExtend<WebSocketLike>()
    // @ts-expect-error not a constructor
    new NotificationClient({ url: 'ws://x', token: 't', WebSocket: () => {} })
  })

  it('takes notification data declared as an interface', () => {
    interface Build {
      id: number
      branch: string
    }
    const c = new NotificationClient<Build>({ url: 'ws://x', token: 't' })
    c.on('notification', (n) => expectTypeOf(n.data).toEqualTypeOf<Build | undefined>())
  })

  it('takes undefined for every option that may be absent (exactOptionalPropertyTypes)', () => {
    const fromEnv: string | undefined = undefined
    const maybe = (n: number): number | undefined => (n > 0 ? n : undefined)
    new NotificationClient({
      url: 'ws://x',
      token: 't',
      WebSocket: undefined,
      storage: undefined,
      backoff: { initial: maybe(1), max: maybe(2), factor: undefined },
      random: undefined,
      minUptime: maybe(3),
      watchNetwork: undefined,
    })
    new NotificationServer({
      secret: 's'.repeat(16),
      apiKey: fromEnv,
      database: fromEnv,
      dev: undefined,
      limits: { heartbeatMs: maybe(4) },
    })
    // @ts-expect-error the token is required and cannot be undefined
    new NotificationClient({ url: 'ws://x', token: undefined })
  })

  it('resolves markRead() and history() with exactly the declared shapes', () => {
    expectTypeOf(client.markRead('n1')).resolves.toEqualTypeOf<ReadEvent>()
    expectTypeOf<keyof ReadEvent>().toEqualTypeOf<'ids' | 'all' | 'seq' | 'unreadCount'>()
    expectTypeOf<keyof HistoryPage>().toEqualTypeOf<'items' | 'next'>()
  })

  it('takes a timeout and a signal in ready()', () => {
    expectTypeOf(client.ready({ timeout: 5000, signal: AbortSignal.timeout(1) })).toEqualTypeOf<Promise<void>>()
    // @ts-expect-error a timeout is a number of ms
    client.ready({ timeout: '5s' })
  })
})

describe('README: history paging', () => {
  // HistoryPage.next is absent on the last page; under exactOptionalPropertyTypes history() must take it back as it is.
  it('takes page.next back as { before: page.next }', async () => {
    const page = await client.history({ limit: 20 })
    expectTypeOf(page.next).toEqualTypeOf<number | undefined>()
    const older = await client.history({ before: page.next })
    expectTypeOf(older).toEqualTypeOf<HistoryPage<Deploy>>()
  })
})
