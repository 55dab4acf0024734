import type { ClientEvents, JsonObject, Notification, NotificationClient } from 'belfry'
import type { ReactElement, ReactNode } from 'react'
import * as React from 'react'
import {
  CLIENT,
  CONNECTION,
  type ConnectionInfo,
  createStore,
  GET,
  LIST,
  type Notifications,
  RETAIN,
  type Slices,
  type Store,
  UNREAD,
} from './store.js'

export interface BelfryProviderProps<Data extends object = JsonObject> {
  /**
   * The client, or a function that makes it (called once, in the browser,
   * after the provider mounts: never in server rendering, where Node 20 has no
   * WebSocket). Taken once, as `useState` takes its initial value: give the
   * provider a `key` to change clients, and key it by user (`key={userId}`)
   * to switch users: the list is the provider's, and a token provider that
   * switches users under one provider keeps the previous user's list. The
   * provider connects the client when it mounts, and closes it (for good) a
   * macrotask after the last provider of it unmounts.
   */
  client: NotificationClient<Data> | (() => NotificationClient<Data>)
  /** The most notifications `useNotifications()` keeps, newest first. @default 100 */
  maxItems?: number | undefined
  children?: ReactNode
}

// Outside a provider the context is 0 (falsy, as undefined is, and a byte shorter in belfry/react).
const BelfryContext = React.createContext<Store | undefined>(0 as never)

/** Gives the hooks below it a client: see {@link BelfryProviderProps}. */
export function BelfryProvider<Data extends object = JsonObject>(props: BelfryProviderProps<Data>): ReactElement {
  // One store per provider, kept across StrictMode's unmount and remount of the effect: so one client.
  const [store] = React.useState(() => createStore(props.client, props.maxItems))
  // retain is the effect, its cleanup what it returns; the store never changes, so no dependency.
  React.useEffect(store[RETAIN], [])
  // The client, made (or taken) before the children's effects, which run before the provider's: shown
  // again by <Activity>, a new one, to which their requests go. (On every render: get() keeps the one it has.)
  // A layout effect in the browser only: in server rendering React 18 warns of one (and runs neither).
  ;(globalThis.window ? React.useLayoutEffect : React.useEffect)(() => {
    store[GET]()
  })
  return React.createElement(BelfryContext.Provider, { value: store as unknown as Store }, props.children)
}

const useStore = (): Store => {
  const store = React.useContext(BelfryContext)
  if (!store) throw Error('No <BelfryProvider>')
  return store
}

/** One slice of the store: the component renders again only when that slice changes. */
const useSlice = <I extends number>(i: I): Slices[I] => {
  const [now, server, subscribe] = useStore()
  return React.useSyncExternalStore(
    subscribe,
    () => now[i],
    () => server[i],
  )
}

/** The list and its paging: see {@link Notifications}. Empty in server rendering. */
export const useNotifications = <Data extends object = JsonObject>(): Notifications<Data> =>
  useSlice(LIST) as unknown as Notifications<Data>

/**
 * Unread notifications in the user's inbox, as the server last said: 0 until the client is online, and
 * from when its token names another user until it is online for that one.
 */
export const useUnreadCount = (): number => useSlice(UNREAD)

/** The connection state, with the `status` event behind it and when it came. */
export const useConnectionState = (): ConnectionInfo => useSlice(CONNECTION)

/** The client: undefined in server rendering, and until the provider's effect has made it. */
export const useBelfryClient = <Data extends object = JsonObject>(): NotificationClient<Data> | undefined =>
  useSlice(CLIENT) as unknown as NotificationClient<Data> | undefined

/**
 * Calls `handler` on each event of `type` while the component is mounted:
 * always the handler of the latest render, which may use its props and state.
 */
export function useNotificationEvent<Data extends object = JsonObject>(
  type: 'notification',
  handler: (notification: Notification<Data>) => void,
): void
export function useNotificationEvent<K extends keyof ClientEvents>(type: K, handler: (event: ClientEvents[K]) => void): void
export function useNotificationEvent(type: keyof ClientEvents, handler: (event: never) => void): void {
  const store = useStore()
  const latest = React.useRef(handler)
  // Before any effect of this render: no event reaches an older handler.
  React.useInsertionEffect(() => {
    latest.current = handler
  })
  // Children's effects run before the provider's: this subscribes before the client connects, so it misses nothing.
  React.useEffect(() => store[GET]().on(type, (event) => latest.current(event as never)), [store, type])
}
