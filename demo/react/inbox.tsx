import type { Notification } from 'belfry'
import { useNotificationEvent, useNotifications, useUnreadCount } from 'belfry/react'
import { type Dispatch, type SetStateAction, useEffect, useRef, useState } from 'react'
import { describe } from '../dom.js'
import { BellMark } from './app.js'
import { Time } from './time.js'

/**
 * The bell with its unread badge (useUnreadCount: renders only when the count
 * changes), and the inbox panel it opens (useNotifications: the live list and
 * the pages loaded, read flags kept up to date across tabs). `open` is the
 * page's, which a desktop notification's click sets too.
 */
export function Bell({
  open,
  setOpen,
  report,
}: {
  open: boolean
  setOpen: Dispatch<SetStateAction<boolean>>
  report: (error: unknown) => void
}) {
  const count = useUnreadCount()
  const wrap = useRef<HTMLDivElement>(null)
  const bell = useRef<HTMLButtonElement>(null)

  useEffect(() => {
    if (!open) return
    const key = (e: KeyboardEvent) => {
      if (e.key !== 'Escape') return
      setOpen(false)
      bell.current?.focus()
    }
    const click = (e: MouseEvent) => {
      const path = e.composedPath()
      const inToasts = path.some((t) => t instanceof HTMLElement && t.dataset.testid === 'toasts')
      if (wrap.current && !path.includes(wrap.current) && !inToasts) setOpen(false)
    }
    document.addEventListener('keydown', key)
    document.addEventListener('click', click)
    return () => {
      document.removeEventListener('keydown', key)
      document.removeEventListener('click', click)
    }
  }, [open, setOpen])

  return (
    <div className="bell-wrap" ref={wrap}>
      <button
        ref={bell}
        className="bell"
        type="button"
        data-testid="bell"
        aria-label={`Notifications, ${count} unread`}
        aria-expanded={open}
        aria-controls="inbox"
        onClick={() => setOpen(!open)}
      >
        <BellMark />
        <span className="badge" data-testid="badge" hidden={count === 0}>
          {count}
        </span>
      </button>
      {open && <Inbox count={count} report={report} />}
    </div>
  )
}

function Inbox({ count, report }: { count: number; report: (error: unknown) => void }) {
  const { notifications, hasMore, loading, loadMore, markAllRead } = useNotifications()
  const [failure, setFailure] = useState('')
  /** The first page the panel asked for has not come: asked for again once online if its ask failed. */
  const first = useRef(false)
  const more = () => {
    setFailure('')
    loadMore().then(
      () => {
        first.current = false
      },
      (error: unknown) => setFailure(`Could not load the inbox: ${describe(error)}`),
    )
  }
  // Opening the inbox loads its first page when nothing is shown yet.
  // biome-ignore lint/correctness/useExhaustiveDependencies: once, when the panel opens
  useEffect(() => {
    if (notifications.length === 0 && hasMore) {
      first.current = true
      more()
    }
  }, [])
  // The first page failed (opened offline, or while the server was down): loaded once online, merged by id with
  // what came live meanwhile, which alone would pass for the whole inbox beside the badge's count. (One still
  // waiting for the connection goes out by itself.)
  useNotificationEvent('status', (e) => {
    if (e.to === 'online' && first.current && failure) more()
  })

  const note = failure || (loading && notifications.length === 0 ? 'Loading…' : notifications.length === 0 ? 'No notifications yet.' : '')
  return (
    <section className="inbox" id="inbox" data-testid="inbox" aria-label="Inbox">
      <div className="inbox-head">
        <h2>Inbox</h2>
        <button
          type="button"
          className="link-button"
          data-testid="mark-all"
          disabled={count === 0}
          onClick={() => markAllRead().catch(report)}
        >
          Mark all read
        </button>
      </div>
      <ul className="inbox-list" data-testid="inbox-list">
        {notifications.map((n) => (
          <Item key={n.id} n={n} report={report} />
        ))}
      </ul>
      <p className="inbox-note" data-testid="inbox-note" hidden={note === ''}>
        {note}
      </p>
      <button type="button" className="secondary load-more" data-testid="load-more" hidden={!hasMore} disabled={loading} onClick={more}>
        Load more
      </button>
    </section>
  )
}

function Item({ n, report }: { n: Notification; report: (error: unknown) => void }) {
  const { markRead } = useNotifications()
  const [marking, setMarking] = useState(false)
  return (
    <li className="inbox-item" data-testid="inbox-item" data-read={n.read} data-priority={n.priority} data-seq={n.seq}>
      <div className="inbox-item-head">
        <span className="inbox-dot" aria-hidden="true" />
        <strong className="inbox-title" data-testid="inbox-title">
          {n.title}
        </strong>
        <Time iso={n.timestamp} />
      </div>
      <p className="inbox-body" data-testid="inbox-body">
        {n.body}
      </p>
      {!n.read && (
        <>
          <span className="visually-hidden unread-label">Unread.</span>
          <button
            type="button"
            className="link-button"
            data-testid="mark-read"
            disabled={marking}
            onClick={() => {
              setMarking(true)
              markRead(n.id).catch((error: unknown) => {
                setMarking(false)
                report(error)
              })
            }}
          >
            Mark read
          </button>
        </>
      )}
    </li>
  )
}
