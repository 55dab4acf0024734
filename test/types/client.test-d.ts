import { describe, expectTypeOf, it } from 'vitest'
import {
  type AuthError,
  type BelfryError,
  type ConnectionState,
  type Notification,
  NotificationClient,
  type StatusEvent,
} from '../../src/index.js'

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
  })
})
