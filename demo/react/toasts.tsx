import type { Notification, Priority } from 'belfry'
import { useNotificationEvent } from 'belfry/react'
import { type CSSProperties, useCallback, useEffect, useRef, useState } from 'react'
import { Time } from './time.js'

/** How long a toast stays, not counting time under the pointer or focus. */
const LIFETIME_MS = 6000
/** Toasts on screen at once; older ones wait hidden until their own time is up. */
const MAX_VISIBLE = 4

const LABELS: Record<Priority, string> = { low: 'Low', medium: 'Medium', high: 'High' }

/** A toast per notification as it arrives (useNotificationEvent), in a polite live region. */
export function Toasts() {
  const [live, setLive] = useState<Notification[]>([])
  useNotificationEvent('notification', (n) => setLive((all) => [...all, n]))
  const dismiss = useCallback((n: Notification) => setLive((all) => all.filter((t) => t !== n)), [])
  const hidden = Math.max(0, live.length - MAX_VISIBLE)
  return (
    <div className="toasts" data-testid="toasts" role="status" aria-live="polite" aria-label="New notifications">
      <p className="toast-more" data-testid="toast-more" hidden={hidden === 0}>{`+${hidden} earlier`}</p>
      {live.map((n, i) => (
        <Toast key={`${n.id}-${n.seq}`} n={n} hidden={i < hidden} dismiss={dismiss} />
      ))}
    </div>
  )
}

function Toast({ n, hidden, dismiss }: { n: Notification; hidden: boolean; dismiss: (n: Notification) => void }) {
  const [holds, setHolds] = useState<string[]>([])
  const remaining = useRef(LIFETIME_MS)
  const paused = holds.length > 0
  // One timer, paused while the pointer or focus is on the toast.
  useEffect(() => {
    if (paused) return
    const started = Date.now()
    const timer = setTimeout(() => dismiss(n), remaining.current)
    return () => {
      clearTimeout(timer)
      remaining.current -= Date.now() - started
    }
  }, [paused, dismiss, n])
  const hold = (why: string) => setHolds((h) => (h.includes(why) ? h : [...h, why]))
  const release = (why: string) => setHolds((h) => h.filter((w) => w !== why))
  return (
    <article
      className={paused ? 'toast paused' : 'toast'}
      data-testid="toast"
      data-priority={n.priority}
      role={n.priority === 'high' ? 'alert' : undefined}
      hidden={hidden}
      style={{ '--life': `${LIFETIME_MS}ms` } as CSSProperties}
      onMouseEnter={() => hold('pointer')}
      onMouseLeave={() => release('pointer')}
      onFocus={() => hold('focus')}
      onBlur={(e) => {
        if (!(e.relatedTarget instanceof Node && e.currentTarget.contains(e.relatedTarget))) release('focus')
      }}
    >
      <header className="toast-head">
        <span className="priority" data-testid="toast-priority">
          {LABELS[n.priority] ?? n.priority}
        </span>
        {n.topic !== undefined && <span className="topic">#{n.topic}</span>}
        <Time iso={n.timestamp} />
        <button type="button" className="toast-close" aria-label="Dismiss" onClick={() => dismiss(n)}>
          ×
        </button>
      </header>
      <h3 className="toast-title" data-testid="toast-title">
        {n.title}
      </h3>
      <p className="toast-body" data-testid="toast-body">
        {n.body}
      </p>
      <span className="toast-life" aria-hidden="true" />
    </article>
  )
}
