import { createElement } from 'react'
import { describe, expectTypeOf, it } from 'vitest'
import {
  type BelfryError,
  type ConnectionState,
  type Notification,
  NotificationClient,
  type ReadEvent,
  type StatusEvent,
} from '../../src/index.js'
import {
  BelfryProvider,
  type ConnectionInfo,
  type Notifications,
  useBelfryClient,
  useConnectionState,
  useNotificationEvent,
  useNotifications,
  useUnreadCount,
} from '../../src/react/index.js'

type Deploy = { service: string; version: string }
const client = new NotificationClient<Deploy>({ url: 'ws://localhost/ws', token: () => 'token' })

describe('belfry/react types', () => {
  it('takes a client or a factory, and maxItems', () => {
    createElement(BelfryProvider<Deploy>, { client })
    createElement(BelfryProvider<Deploy>, { client: () => client, maxItems: 50 })
    // @ts-expect-error a factory takes no arguments
    createElement(BelfryProvider, { client: (url: string) => new NotificationClient({ url, token: 't' }) })
    // @ts-expect-error the client is required
    createElement(BelfryProvider, {})
  })

  it('types each hook', () => {
    expectTypeOf(useUnreadCount()).toEqualTypeOf<number>()
    expectTypeOf(useConnectionState()).toEqualTypeOf<ConnectionInfo>()
    expectTypeOf(useConnectionState().state).toEqualTypeOf<ConnectionState>()
    expectTypeOf(useConnectionState().event).toEqualTypeOf<StatusEvent | undefined>()
    expectTypeOf(useNotifications<Deploy>()).toEqualTypeOf<Notifications<Deploy>>()
    expectTypeOf(useNotifications<Deploy>().notifications).toEqualTypeOf<readonly Notification<Deploy>[]>()
    expectTypeOf(useNotifications().loadMore).returns.toEqualTypeOf<Promise<void>>()
    expectTypeOf(useNotifications().markRead).parameter(0).toEqualTypeOf<string | string[]>()
    expectTypeOf(useNotifications().markAllRead).returns.toEqualTypeOf<Promise<ReadEvent>>()
    expectTypeOf(useBelfryClient<Deploy>()).toEqualTypeOf<NotificationClient<Deploy> | undefined>()
    // @ts-expect-error the list is read-only: the store owns it
    useNotifications().notifications.push({} as Notification)
  })

  it('types useNotificationEvent by event, and notifications by their data', () => {
    useNotificationEvent<Deploy>('notification', (n) => {
      expectTypeOf(n).toEqualTypeOf<Notification<Deploy>>()
      expectTypeOf(n.data?.service).toEqualTypeOf<string | undefined>()
    })
    useNotificationEvent('notification', (n: Notification<Deploy>) => n.data?.version)
    useNotificationEvent('status', (e) => expectTypeOf(e).toEqualTypeOf<StatusEvent>())
    useNotificationEvent('read', (e) => expectTypeOf(e).toEqualTypeOf<ReadEvent>())
    useNotificationEvent('unread', (e) => expectTypeOf(e.count).toEqualTypeOf<number>())
    useNotificationEvent('error', (e) => expectTypeOf(e).toEqualTypeOf<BelfryError>())
    // @ts-expect-error no such event
    useNotificationEvent('notifications', () => {})
    // @ts-expect-error wrong payload for 'unread'
    useNotificationEvent('unread', (e: { count: string }) => e)
  })
})
