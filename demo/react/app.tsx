import { NotificationClient } from 'belfry'
import { BelfryProvider, useBelfryClient, useNotificationEvent } from 'belfry/react'
import { sharedConnection } from 'belfry/shared'
import { useEffect, useState } from 'react'
import { DevServer } from '../dev.js'
import { describe } from '../dom.js'
import { Desktop } from './desktop.js'
import { Bell } from './inbox.js'
import { Send, Topics } from './send.js'
import { ConnectionCard, Status } from './status.js'
import { Toasts } from './toasts.js'

export const BellMark = () => (
  <svg viewBox="0 0 24 24" aria-hidden="true">
    <path d="M12 2a6 6 0 0 0-6 6v4l-2 4h16l-2-4V8a6 6 0 0 0-6-6zm0 20a3 3 0 0 0 3-3H9a3 3 0 0 0 3 3z" />
  </svg>
)

function Brand() {
  return (
    <a className="brand" href="./react.html">
      <span className="brand-mark">
        <BellMark />
      </span>
      belfry <span className="brand-sub">demo · React</span>
    </a>
  )
}

/**
 * The page for one signed-in user: the provider makes the client once, in the browser, and closes it on the way out.
 * `share`: through a connection the user's tabs share (`?share=1`).
 */
export function App({ user, share }: { user: string; share: boolean }) {
  const [dev] = useState(() => new DevServer(user))
  const [error, setError] = useState('')
  // The bell's, here: a click on a desktop notification opens the inbox too.
  const [inbox, setInbox] = useState(false)
  const report = (e: unknown) => setError(`${new Date().toLocaleTimeString()} · ${describe(e)}`)

  useEffect(() => {
    document.title = `${user} · belfry demo · React`
  }, [user])

  return (
    <BelfryProvider
      client={() =>
        new NotificationClient({
          url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`,
          token: dev.token, // fetches a fresh token on every connect
          ...(share && { connection: sharedConnection() }),
        })
      }
    >
      <Errors report={report} />
      <header className="bar">
        <Brand />
        <div className="bar-end">
          <Status />
          <p className="who">
            <span className="visually-hidden">Signed in as</span>
            <strong data-testid="user">{user}</strong>
            <a className="switch" href="./react.html" data-testid="switch-user">
              switch user
            </a>
          </p>
          <Bell open={inbox} setOpen={setInbox} report={report} />
        </div>
      </header>
      <main className="grid">
        <Send dev={dev} />
        <div className="stack">
          <Topics dev={dev} report={report} />
          <ConnectionCard drop={() => dev.drop()} share={share} report={report}>
            <Desktop user={user} openInbox={setInbox} report={report} />
          </ConnectionCard>
        </div>
      </main>
      <footer className="foot">
        <p data-testid="hint">
          Try it: open this page in a{' '}
          <a data-testid="second-tab" href={location.href} target="_blank" rel="noreferrer">
            second tab
          </a>{' '}
          as the same user, or as{' '}
          <a data-testid="as-bob" href="./react.html?user=bob" target="_blank" rel="noreferrer">
            ?user=bob
          </a>
          , and send notifications between them.
        </p>
        <p className="error-line" data-testid="error" role="status" hidden={error === ''}>
          {error}
        </p>
        <p>
          <a data-testid="plain-page" href={`./${location.search}`}>
            The same page without React
          </a>
          , on the client alone.
        </p>
      </footer>
      {/* Last: its pagehide listener runs after belfry/desktop's (in Desktop), which hands a summary still
          waiting to the tab that leads next; the close would stop it first. */}
      <CloseOnLeave />
      <Toasts />
    </BelfryProvider>
  )
}

/** Errors go to a discreet footer line, never the console. */
function Errors({ report }: { report: (error: unknown) => void }) {
  useNotificationEvent('error', report)
  useNotificationEvent('status', (e) => {
    if (e.to === 'closed' && e.reason !== 'close') report(new Error(`Connection closed (${e.reason}). Reload the page to connect again.`))
  })
  return null
}

/** Closing sends the pending ack; a page restored from the back-forward cache starts afresh. */
function CloseOnLeave() {
  const client = useBelfryClient()
  useEffect(() => {
    if (!client) return
    const close = () => client.close()
    const show = (e: PageTransitionEvent) => {
      if (e.persisted) location.reload()
    }
    addEventListener('pagehide', close)
    addEventListener('pageshow', show)
    return () => {
      removeEventListener('pagehide', close)
      removeEventListener('pageshow', show)
    }
  }, [client])
  return null
}

export function SignIn() {
  const [id, setId] = useState('alice')
  return (
    <>
      <header className="bar">
        <Brand />
      </header>
      <main className="signin">
        <form
          className="card signin-card"
          data-testid="signin-form"
          onSubmit={(e) => {
            e.preventDefault()
            if (id.trim() !== '') location.search = `?user=${encodeURIComponent(id.trim())}`
          }}
        >
          <h1>Sign in</h1>
          <p className="muted">Pick any user id. In dev mode the server mints a token for it.</p>
          <label htmlFor="signin-user">User id</label>
          <div className="row">
            <input
              id="signin-user"
              data-testid="signin-user"
              value={id}
              onChange={(e) => setId(e.target.value)}
              maxLength={64}
              autoComplete="username"
              required
            />
            <button type="submit" data-testid="signin">
              Sign in
            </button>
          </div>
        </form>
      </main>
      <footer className="foot">
        <p>
          <a data-testid="plain-page" href="./">
            The same page without React
          </a>
          , on the client alone.
        </p>
      </footer>
    </>
  )
}
