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

/** The status pill (with a live countdown while reconnecting), its log, and "Drop connection". */
export function createStatus(client: NotificationClient, drop: () => Promise<void>, report: (error: unknown) => void): void {
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

  client.on('status', (e) => {
    show(e.to, e)
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
