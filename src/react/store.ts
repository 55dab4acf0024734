import type { ConnectionState, HistoryPage, JsonObject, Notification, NotificationClient, ReadEvent, StatusEvent } from 'belfry'

/**
 * What `useNotifications()` returns: one object, the same until the list or `loading` changes. Its
 * requests go to the provider's client: after the provider let go of it (unmounted, or hidden by
 * `<Activity>`), to that closed client, and they reject as its requests do (`RequestError` `closed`);
 * shown again, the provider takes a new client before its children's effects run, and they go to it.
 */
export interface Notifications<Data extends object = JsonObject> {
  /**
   * What arrived since the provider mounted (after the newest page, when it
   * found its client already started: one the app passes in, connected, or
   * another provider's, or its own that another kept open while `<Activity>`
   * hid it; loaded at once if online, else when it is next online), and the
   * pages `loadMore()` loaded: newest first (by
   * `seq`; the article's server's, seq 0, above belfry's), each id once, at most the provider's `maxItems`, their `read`
   * flags following the user's `read` events, and, back online after a time
   * away, the newest page's (100 notifications). The newest page loaded for a
   * client found started leaves none older than itself when older ones exist
   * (`next`): what it skipped, `loadMore()` loads. The list is the provider's:
   * two providers of one client may hold different pages.
   */
  notifications: readonly Notification<Data>[]
  /** A `loadMore()` is under way. */
  loading: boolean
  /** `loadMore()` may find older ones: the server has not said there are no more, and the list is not full. */
  hasMore: boolean
  /**
   * Loads the page before the oldest notification in the list (the newest
   * page when the list is empty; while the newest page is owed to it, that
   * page, which pays the debt).
   * Rejects as `client.history()` does. Call it
   * while `loading` is false: two calls at once load the same page twice.
   */
  loadMore(): Promise<void>
  /** Marks notifications read on every tab and device of the user; the list follows with the `read` event. */
  markRead(ids: string | string[]): Promise<ReadEvent>
  /** Marks every notification read. */
  markAllRead(): Promise<ReadEvent>
}

/** What `useConnectionState()` returns: one object per change of state. */
export interface ConnectionInfo {
  state: ConnectionState
  /** The `status` event that set `state` (`reason`, `attempt`, `retryIn`, `expired`); absent before the first one. */
  event?: StatusEvent | undefined
  /**
   * When that event came, as a `Date.now()` time: while `reconnecting`, the
   * next try is due at `since + event.retryIn`.
   */
  since?: number | undefined
}

/** Where each slice is in {@link Slices}. */
export const LIST = 0
export const UNREAD = 1
export const CONNECTION = 2
export const CLIENT = 3

/**
 * What the hooks read, one slice each: the list, the unread count, the
 * connection, and the client (undefined until an effect has made or taken it:
 * always in server rendering). A slice is a new object when it changes, and
 * the same object until then.
 */
export type Slices<Data extends object = JsonObject> = [
  list: Notifications<Data>,
  unreadCount: number,
  connection: ConnectionInfo,
  client: NotificationClient<Data> | undefined,
]

/**
 * One per provider, made in its first render (on the server too, where no
 * client is ever made): the slices, and the client's events followed once for
 * any number of hooks. A tuple rather than an object: its members' names would
 * cost belfry/react bytes it does not have.
 */
export type Store<Data extends object = JsonObject> = [
  /** The slices now. */
  now: Slices<Data>,
  /** The slices as the store was made, before any client: what server rendering and hydration show. */
  server: Slices<Data>,
  subscribe: (listener: () => void) => () => void,
  /**
   * The client, made (or taken) on the first call, and made anew after the store let go of it: called
   * by effects (the provider's layout effect, before its children's effects; useNotificationEvent's),
   * never in server rendering.
   */
  get: () => NotificationClient<Data>,
  /**
   * Connects the client `get` put in the slot (and, one found started, loads
   * the newest page once it is online) and keeps it open until the function it
   * returns is called; then closes it a macrotask later, unless a provider
   * holds it again.
   */
  retain: () => () => void,
]

/** Where {@link Store}'s functions are in it. */
export const GET = 3
export const RETAIN = 4

/** How many providers hold each client open. */
const holds = new WeakMap<object, number>()

export function createStore<Data extends object>(
  make: NotificationClient<Data> | (() => NotificationClient<Data>),
  max = 100,
): Store<Data> {
  type Item = Notification<Data>
  /**
   * The list is owed the newest page of the client `seen` (one found started: the store saw none of what came
   * before), until a page merged pays it. The store's, not an effect run's: StrictMode's remount keeps the debt of
   * the first run, whose page may fail. (Declared first: found to gzip smallest.)
   */
  let owe: boolean | undefined
  const listeners = new Set<() => void>()
  let items: readonly Item[] = []
  let loading = false
  /** The server said there is nothing older (undefined: not yet). */
  let end: boolean | undefined
  /** The client this store let go of and closed: kept in the client's slot for requests, made anew by the effects. */
  let gone: NotificationClient<Data> | undefined
  /**
   * The client whose debt (`owe`) this store weighed, until a macrotask after a provider let go of it: StrictMode's
   * remount, in the same task, weighs it no more, and keeps the debt as the first run left it.
   */
  let seen: NotificationClient<Data> | 0 | undefined

  // (The functions below are declared in the order found to gzip smallest: belfry/react is at its size limit.)
  /** Replaces one slice and tells every hook; each renders again only if its own slice changed. */
  const set = <I extends number>(i: I, value: Slices<Data>[I]) => {
    now[i] = value
    for (const listener of listeners) listener()
  }
  /**
   * Adds `incoming` to the list, then keeps it newest first by seq, each id
   * once: the incoming one, put in the Map last (what comes in is fresher: a
   * page's read flags are newer than the list's), at most `max`; and makes the
   * list's slice anew. The incoming come first in the Map too: against the
   * article's servers every seq is 0 (ids are made from the frames), and the
   * sort, which is stable, leaves the newest first. A seq of 0 sorts above
   * every other (Infinity; two of them compare NaN, taken as equal): the
   * URL's server gone from belfry's to the article's, what it sends is the
   * newest, and a full list would cut it at once below belfry's.
   */
  const list = (incoming: readonly Item[] = []) => {
    items = [...new Map([...incoming, ...items, ...incoming].map((n) => [n.id, n])).values()]
      .sort((a, b) => (b.seq || 1 / 0) - (a.seq || 1 / 0))
      .slice(0, max)
    set(LIST, { notifications: items, loading, hasMore: !end && items.length < max, loadMore, markRead, markAllRead })
  }
  // A request goes to the client in the slot: the one made, or, once the provider let go of it, the one it
  // closed, which refuses it (RequestError 'closed'): only an effect makes a client. The provider's layout
  // effect makes it before its children's effects (so, shown again by <Activity>, their requests go to the
  // new one). (One made by none yet: a child's layout effect in the provider's first commit.)
  const markAllRead = () => (now[CLIENT] || get()).markAllRead()
  const markRead = (ids: string | string[]) => (now[CLIENT] || get()).markRead(ids)
  /** Sets the read flags a `read` event tells of (or the newest page, as one: see retain), unread to read only. */
  const read = (event: ReadEvent) => {
    let marked: Item | undefined
    // biome-ignore lint/suspicious/noAssignInExpressions: notes that one changed (keeps belfry/react within its size limit)
    items = items.map((n) => (n.read || !(event.all ? n.seq <= event.seq : event.ids.includes(n.id)) ? n : (marked = { ...n, read: true })))
    // A read event that changes none of the list leaves its slice alone.
    if (marked) list()
  }
  /**
   * Merges the newest page owed to the list: its items, their read flags, and `hasMore` false if it has no next
   * page (it is the whole inbox); with one, the list keeps nothing older than the page, whose gap below it
   * loadMore(), from the oldest, never fills (the article's server's, seq 0, sorted as newest, stay: no page brings
   * them back).
   */
  const owed = (page: HistoryPage<Data>) => {
    end = !page.next
    // Only while owed: a second answer of it (online()'s and a loadMore()'s, both sent at auth) finds the list paid, and
    // maybe paged below since: it merges as any page.
    items = items.filter((n) => !(owe && n.seq && n.seq < page.next!))
    owe = false
    list(page.items)
  }
  const loadMore = () => {
    loading = true
    list()
    // `before: undefined` is left out of the frame (JSON): the newest page. While the newest page is owed, that page
    // (100, as owed), merged as owed: below the list's oldest item (stale), its answer would put back the gap the
    // owed page closes.
    return (now[CLIENT] || get())
      .history(owe ? { limit: 100 } : { before: items.at(-1)?.seq })
      .then(
        owe
          ? owed
          : (page) => {
              end = !page.next
              list(page.items)
            },
      )
      .finally(() => {
        loading = false
        list()
      })
  }
  const get = (): NotificationClient<Data> => {
    let client = now[CLIENT]
    if (client && client !== gone) return client
    // A client has `on`; a function has none.
    client = now[CLIENT] = (make as NotificationClient<Data>).on
      ? (make as NotificationClient<Data>)
      : (make as () => NotificationClient<Data>)()
    return client
  }

  // The list's slot is made by list() below; the client's stays empty (undefined) until get().
  const now = [0, 0, { state: 'idle' }] as unknown as Slices<Data>
  list()
  return [
    now,
    [...now],
    (listener) => {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    get,
    () => {
      // The client the provider's layout effect made (or took) in this commit.
      const client = now[CLIENT]!
      // Followed from where it is now: a client the app connected already, or one another provider kept
      // open while an <Activity> hid this one (its events then reached no listener here).
      now[UNREAD] = client.unreadCount
      set(CONNECTION, { state: client.state })
      // The store follows the client while a provider holds it: its listeners go with it (another provider of the client has its own).
      // (Its status listener calls online(), declared just below: no event can come in between.)
      const offs = [
        client.on('status', (event) => {
          online()
          set(CONNECTION, { state: event.to, event, since: Date.now() })
        }),
        client.on('unread', (event) => set(UNREAD, event.count)),
        client.on('notification', (n) => list([n])),
        client.on('read', read),
      ]
      // Online (now, or at each status event that finds it so): the newest page (100), merged into the list if
      // owed (see owed()); else, for a list the store kept following, that page's read flags. A read made elsewhere while this
      // client was away comes as no read event (unless it left none unread: the server then sends
      // `read {all}`). So back online, the newest page says which are read: its ids of read ones, `false` for
      // unread ones, which matches no id. A list with none, not owed, asks nothing; a page that fails only
      // misses this refresh (one owed is asked for again at the next 'online').
      const online = () =>
        (owe || items.length) &&
        client.state === 'online' &&
        client.history({ limit: 100 }).then(
          // Chosen as the page is asked for: one asked for read flags (a list followed) only reads, even if the
          // store, shown again by <Activity> meanwhile, owes a page by the time it comes: the owed one merges.
          owe ? owed : (page) => read({ ids: page.items.map((n) => n.read && n.id) } as ReadEvent),
          () => {},
        )
      // A client already started (by the app, another provider, or this one before an <Activity> hid it)
      // brought this store none of what it had: it owes the list the newest page, loaded now if online (before
      // connect(): a client it starts is not online yet), else at its next 'online'. A client this store starts
      // (idle till now) owes nothing. The one `seen` is weighed already: StrictMode remounts in the task of the
      // first run, which found it idle, asked for the page, or left it owed till its next 'online'; the remount
      // keeps that debt (a page the first run asked for and that fails is asked for again at the next 'online')
      // and asks for nothing now (the first run's page may be on its way).
      if (seen !== client) {
        owe = client.state !== 'idle'
        seen = client
        online()
      }
      // -~: one more, from none (undefined) too; ~- below: one less.
      holds.set(client, -~holds.get(client)!)
      client.connect()
      return () => {
        offs.map((off) => off())
        holds.set(client, ~-holds.get(client)!)
        // A macrotask later, if no provider holds it by then: StrictMode's unmount and remount keep the client.
        // One closed so (an <Activity> hidden, its effects cleaned up) stays in the slot, where the hooks'
        // requests find it closed, and is made anew if a provider comes back; one the app closed stays.
        setTimeout(() => {
          seen = 0
          // biome-ignore lint/suspicious/noAssignInExpressions: notes the client let go of (keeps belfry/react within its size limit)
          holds.get(client) || client.state === 'closed' || (gone = client).close()
        })
      }
    },
  ]
}
