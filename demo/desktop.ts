import type { NotificationClient } from 'belfry'
import { type DesktopPermission, desktopNotifications } from 'belfry/desktop'
import { byTestId } from './dom.js'

/** What the connection card says of desktop notifications (both pages). */
export const STATES: Record<DesktopPermission, string> = {
  default: 'Off: the browser has not been asked yet.',
  granted: 'On: shown while no tab of this page is visible, by one tab.',
  denied: "Blocked in the browser's site settings.",
  unsupported: 'Not supported by this browser (on Android, pages cannot show them).',
}

/**
 * "Enable desktop notifications": the browser is asked only when the button is
 * clicked, never on load. A click on a desktop notification brings the tab
 * forward and opens the inbox. Only `user`'s visible tabs keep them quiet:
 * another user's page in the same browser does not.
 */
export function createDesktop(client: NotificationClient, user: string, report: (error: unknown) => void): void {
  const button = byTestId('desktop-enable', HTMLButtonElement)
  const state = byTestId('desktop-state', HTMLElement)
  const desktop = desktopNotifications(client, {
    user,
    onClick: () => {
      const bell = byTestId('bell', HTMLButtonElement)
      if (bell.getAttribute('aria-expanded') !== 'true') bell.click()
    },
  })
  const show = (permission: DesktopPermission) => {
    state.textContent = STATES[permission]
    state.dataset.permission = permission
    button.hidden = permission !== 'default'
  }
  show(desktop.permission)
  desktop.on('permission', show)
  button.addEventListener('click', () => {
    desktop.request().then(show, report)
  })
}
