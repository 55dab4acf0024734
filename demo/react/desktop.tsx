import { type DesktopNotifications, type DesktopPermission, desktopNotifications } from 'belfry/desktop'
import { useBelfryClient } from 'belfry/react'
import { useEffect, useState } from 'react'
import { STATES } from '../desktop.js'

/**
 * "Enable desktop notifications" (belfry/desktop on the provider's client): the browser is asked only when the
 * button is clicked, never on load. A click on a desktop notification brings the tab forward and opens the inbox.
 * Only `user`'s visible tabs keep them quiet: another user's page in the same browser does not.
 */
export function Desktop({
  user,
  openInbox,
  report,
}: {
  user: string
  /** Stable (a state setter): a new one would start belfry/desktop anew. */
  openInbox: (open: true) => void
  report: (error: unknown) => void
}) {
  const client = useBelfryClient()
  const [desktop, setDesktop] = useState<DesktopNotifications>()
  const [permission, setPermission] = useState<DesktopPermission>()
  // One per client (the provider's next one after an unmount or <Activity>), stopped with it.
  useEffect(() => {
    if (!client) return
    const started = desktopNotifications(client, { user, onClick: () => openInbox(true) })
    setDesktop(started)
    setPermission(started.permission)
    started.on('permission', setPermission)
    return () => started.stop()
  }, [client, user, openInbox])

  return (
    <div className="row desktop">
      <button
        type="button"
        className="secondary"
        data-testid="desktop-enable"
        hidden={permission !== 'default'}
        onClick={() => desktop?.request().then(setPermission, report)}
      >
        Enable desktop notifications
      </button>
      <p className="muted small" data-testid="desktop-state" data-permission={permission}>
        {permission && STATES[permission]}
      </p>
    </div>
  )
}
