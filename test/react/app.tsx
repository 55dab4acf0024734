/** A small app on every hook, for the server rendering and hydration tests. */
import type { NotificationClient } from '../../src/index.js'
import { BelfryProvider, useConnectionState, useNotificationEvent, useNotifications, useUnreadCount } from '../../src/react/index.js'

function Bell() {
  const count = useUnreadCount()
  return (
    <button type="button" aria-label={`Notifications, ${count} unread`}>
      {count}
    </button>
  )
}

function Inbox() {
  const { notifications, hasMore } = useNotifications()
  useNotificationEvent('notification', () => {})
  return (
    <ul data-more={hasMore}>
      {notifications.map((n) => (
        <li key={n.id}>{n.title}</li>
      ))}
    </ul>
  )
}

function Status() {
  return <p>{useConnectionState().state}</p>
}

export function App({ client }: { client: () => NotificationClient }) {
  return (
    <BelfryProvider client={client}>
      <main>
        <Status />
        <Bell />
        <Inbox />
      </main>
    </BelfryProvider>
  )
}

/** What App renders before any client: the server snapshot. */
export const SERVER_MARKUP =
  '<main><p>idle</p><button type="button" aria-label="Notifications, 0 unread">0</button><ul data-more="true"></ul></main>'
