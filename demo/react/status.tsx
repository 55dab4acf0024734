import type { ConnectionState, StatusEvent } from 'belfry'
import { useConnectionState, useNotificationEvent } from 'belfry/react'
import { type ReactNode, useEffect, useState } from 'react'
import { MODES } from '../status.js'

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

/** Seconds left until `deadline`, counting down once a second. */
function useCountdown(deadline: number | undefined): number | undefined {
  const [now, setNow] = useState(() => Date.now())
  useEffect(() => {
    if (deadline === undefined) return
    setNow(Date.now())
    const timer = setInterval(() => setNow(Date.now()), 250)
    return () => clearInterval(timer)
  }, [deadline])
  return deadline === undefined ? undefined : Math.max(0, Math.ceil((deadline - now) / 1000))
}

/** The status pill: useConnectionState's state, with a countdown to the next try while reconnecting. */
export function Status() {
  const { state, event, since } = useConnectionState()
  const retryAt = state === 'reconnecting' && event?.retryIn !== undefined && since !== undefined ? since + event.retryIn : undefined
  const left = useCountdown(retryAt)
  return (
    <p className="status" data-testid="status" data-state={state} title={event ? `${state}: ${event.reason}` : state}>
      <span className="dot" aria-hidden="true" />
      <span className="status-text">{left === undefined ? LABELS[state] : `Reconnecting in ${left} s`}</span>
    </p>
  )
}

/**
 * "Drop connection", the sharing toggle with this tab's mode (useConnectionState's event), `children` (desktop
 * notifications), and the log of recent changes (useNotificationEvent('status')).
 */
export function ConnectionCard({
  drop,
  share,
  report,
  children,
}: {
  drop: () => Promise<void>
  share: boolean
  report: (error: unknown) => void
  children?: ReactNode
}) {
  const [log, setLog] = useState<{ at: string; event: StatusEvent }[]>([])
  const [dropping, setDropping] = useState(false)
  const mode = useConnectionState().event?.mode
  useNotificationEvent('status', (event) => {
    const at = new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    setLog((entries) => [{ at, event }, ...entries].slice(0, LOG_SIZE))
  })
  return (
    <section className="card" aria-labelledby="conn-heading">
      <h2 id="conn-heading">Connection</h2>
      <p className="muted small">
        Drop the socket from the server side and watch the client back off, reconnect and catch up on what was sent meanwhile.
      </p>
      <div className="row">
        <button
          type="button"
          className="secondary"
          data-testid="drop"
          disabled={dropping}
          onClick={() => {
            setDropping(true)
            drop()
              .catch(report)
              .finally(() => setDropping(false))
          }}
        >
          Drop connection
        </button>
      </div>
      <label className="toggle">
        <input
          type="checkbox"
          data-testid="share"
          defaultChecked={share}
          onChange={(e) => {
            // The connection is chosen when the client is made: the page starts again with the other choice.
            const url = new URL(location.href)
            if (e.target.checked) url.searchParams.set('share', '1')
            else url.searchParams.delete('share')
            location.assign(url)
          }}
        />
        Share one connection among this user's tabs
      </label>
      <p className="muted small" data-testid="mode" data-mode={mode}>
        {MODES[mode ?? 'solo']}
      </p>
      {children}
      <ol className="log" data-testid="status-log" aria-label="Recent connection changes">
        {log.map(({ at, event }, i) => (
          // biome-ignore lint/suspicious/noArrayIndexKey: entries only move down the list, one place per change
          <li key={`${log.length - i}-${at}`}>
            <span className="log-time">{at}</span> <span className="log-state">{event.to}</span> {event.reason}
            {event.retryIn === undefined ? '' : `, retry in ${(event.retryIn / 1000).toFixed(1)} s`}
          </li>
        ))}
      </ol>
    </section>
  )
}
