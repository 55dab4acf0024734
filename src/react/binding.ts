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
  /**
   * The most notifications `useNotifications()` keeps, newest first: a whole number from 0 (0 keeps none, for a
   * provider of a bell alone), or `Infinity` (no limit). Taken once, as `client` is. @default 100
   */
  maxItems?: number | undefined
  children?: ReactNode
}

/** A value as the client's TypeErrors show what they got (its `show`): a string quoted, an object or function by its type. */
const got = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : v && /^[of]/.test(typeof v) ? typeof v : String(v))

/**
 * A bad prop or hook argument: a TypeError that names it, what it got and what it must be, as the client's do.
 *
 * The checks run in development builds only, as React's own prop warnings do: an app's bundler replaces
 * `process.env.NODE_ENV` (React's own builds need it to), and its production build leaves them out
 * (test/unit/size.test.ts holds it to that). Each is written in place as
 * `try { if (process.env.NODE_ENV !== 'production') … } catch …`: a condition shared as a constant or a function would
 * stay in the production build, and one guarded by `typeof process` would turn them off in a browser's development
 * build (where the bundler replaced the expression and defines no `process`). The try is for code no bundler touched,
 * where no `process` is defined: that ReferenceError means no checks.
 */
const check = (name: string, ok: unknown, expected: string, v: unknown) => {
  if (!ok) throw new TypeError(`${name} must be ${expected}; got ${got(v)}`)
}

const isClient = (v: unknown) => typeof (v as NotificationClient | undefined)?.on === 'function'

/**
 * The provider's props checked (development builds only): its client, or a factory that checks what it makes.
 * Without them, a bad `maxItems` (NaN, negative, a string) silently empties or shrinks the list, and a bad client
 * fails later with the engine's "Cannot read properties of undefined", which names neither the prop nor what it takes.
 */
function checkProps<Data extends object>({ client, maxItems }: BelfryProviderProps<Data>): BelfryProviderProps<Data>['client'] {
  // The class itself is a function too (its methods on its prototype): called without `new`, it throws.
  const isClass = isClient((client as { prototype?: unknown } | undefined)?.prototype)
  check(
    'BelfryProvider: client',
    !isClass && (typeof client === 'function' || isClient(client)),
    `a NotificationClient or a function that makes one${isClass ? ', not the class (() => new NotificationClient(…))' : ''}`,
    client,
  )
  // undefined is the default (100). A whole number: a list of 1.5 keeps one and never says it is full. Infinity keeps all.
  check(
    'BelfryProvider: maxItems',
    maxItems === undefined || (typeof maxItems === 'number' && maxItems >= 0 && !(maxItems % 1)),
    'a whole number from 0, or Infinity',
    maxItems,
  )
  if (isClient(client)) return client
  const make = client as () => NotificationClient<Data>
  return () => {
    const made = make()
    check('BelfryProvider: client()', isClient(made), 'a NotificationClient', made)
    return made
  }
}

/** The events a client emits: what useNotificationEvent's `type` may be (the type below keeps it to ClientEvents). */
const EVENTS: { [K in keyof ClientEvents]: 0 } = { notification: 0, status: 0, read: 0, unread: 0, error: 0 }

// Outside a provider the context is 0 (falsy, as undefined is, and a byte shorter in belfry/react).
const BelfryContext = React.createContext<Store | undefined>(0 as never)

/** Gives the hooks below it a client: see {@link BelfryProviderProps}. */
export function BelfryProvider<Data extends object = JsonObject>(props: BelfryProviderProps<Data>): ReactElement {
  // One store per provider, kept across StrictMode's unmount and remount of the effect: so one client.
  const [store] = React.useState(() => {
    try {
      // Development builds only (see check): the client checked, or a factory that checks what it makes.
      if (process.env.NODE_ENV !== 'production') return createStore(checkProps(props), props.maxItems)
    } catch (e) {
      // No `process`, and no bundler replaced the expression: no checks.
      if (!(e instanceof ReferenceError)) throw e
    }
    return createStore(props.client, props.maxItems)
  })
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
  try {
    // Development builds only (see check). A type that is no event's (a typo: 'notifications') would never call
    // the handler, and a handler that is no function would throw at each event, inside the client's emitter.
    if (process.env.NODE_ENV !== 'production') {
      const names = Object.keys(EVENTS)
      check('useNotificationEvent: type', names.includes(type), `one of ${names.map((n) => `"${n}"`).join(', ')}`, type)
      check('useNotificationEvent: handler', typeof handler === 'function', 'a function', handler)
    }
  } catch (e) {
    if (!(e instanceof ReferenceError)) throw e
  }
  const store = useStore()
  const latest = React.useRef(handler)
  // Before any effect of this render: no event reaches an older handler.
  React.useInsertionEffect(() => {
    latest.current = handler
  })
  // Children's effects run before the provider's: this subscribes before the client connects, so it misses nothing.
  React.useEffect(() => store[GET]().on(type, (event) => latest.current(event as never)), [store, type])
}
