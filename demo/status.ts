import type { ConnectionState, NotificationClient, StatusEvent } from 'belfry'
import { $, byTestId, el } from './dom.js'

const LABELS: Record<ConnectionState, string> = {
  idle: 'Idle',
  connecting: 'Connecting…',
  authenticating: 'Authenticating…',
  online: 'Online',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
  closed: 'Closed',
}

/** Recent changes kept in the connection card's log. */
const LOG_SIZE = 6

/** The connection card's line on this tab's part in the connection (both pages). */
export const MODES: Record<StatusEvent['mode'], string> = {
  solo: 'This tab has a socket of its own.',
  leader: "This tab holds the socket that the user's other tabs share.",
  follower: "This tab shares another tab's socket.",
}

/**
 * The status pill (with a live countdown while reconnecting), its log, "Drop
 * connection", and the sharing toggle with this tab's mode.
 */
export function createStatus(
  client: NotificationClient,
  drop: () => Promise<void>,
  report: (error: unknown) => void,
  share: boolean,
): void {
  const status = byTestId('status', HTMLElement)
  const text = $('.status-text', HTMLElement, status)
  const log = byTestId('status-log', HTMLOListElement)
  const dropButton = byTestId('drop', HTMLButtonElement)
  let tick: ReturnType<typeof setTimeout> | undefined

  /** Counts down to `deadline`, redrawing as each second passes. */
  const countdown = (deadline: number) => {
    const left = Math.max(0, deadline - Date.now())
    text.textContent = `Reconnecting in ${Math.ceil(left / 1000)} s`
    if (left > 0) tick = setTimeout(countdown, left % 1000 || 1000, deadline)
  }

  const show = (state: ConnectionState, event?: StatusEvent) => {
    clearTimeout(tick)
    status.dataset.state = state
    status.title = event ? `${state}: ${event.reason}` : state
    if (state === 'reconnecting' && event?.retryIn !== undefined) countdown(Date.now() + event.retryIn)
    else text.textContent = LABELS[state]
  }

  const mode = byTestId('mode', HTMLElement)
  const toggle = byTestId('share', HTMLInputElement)
  toggle.checked = share
  toggle.addEventListener('change', () => {
    // The connection is chosen when the client is made: the page starts again with the other choice.
    const url = new URL(location.href)
    if (toggle.checked) url.searchParams.set('share', '1')
    else url.searchParams.delete('share')
    location.assign(url)
  })

  client.on('status', (e) => {
    show(e.to, e)
    mode.textContent = MODES[e.mode]
    mode.dataset.mode = e.mode
    const retry = e.retryIn === undefined ? '' : `, retry in ${(e.retryIn / 1000).toFixed(1)} s`
    const time = new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    log.prepend(
      el('li', {}, el('span', { class: 'log-time' }, time), ' ', el('span', { class: 'log-state' }, e.to), ` ${e.reason}${retry}`),
    )
    while (log.children.length > LOG_SIZE) log.lastElementChild?.remove()
  })
  show(client.state)

  dropButton.addEventListener('click', () => {
    dropButton.disabled = true
    drop()
      .catch(report)
      .finally(() => {
        dropButton.disabled = false
      })
  })
}
