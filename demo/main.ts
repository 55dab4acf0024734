/**
 * The belfry demo page: sign in as any user (dev mode), get toasts, an inbox
 * with read state shared across tabs, a live connection status, and a form
 * that publishes through the HTTP API. It uses only belfry's public API.
 */
import { NotificationClient } from 'belfry'
import { sharedConnection } from 'belfry/shared'
import { createDesktop } from './desktop.js'
import { DevServer } from './dev.js'
import { byTestId, describe } from './dom.js'
import { createInbox } from './inbox.js'
import { createSend } from './send.js'
import { createStatus } from './status.js'
import { createToasts } from './toasts.js'

const params = new URLSearchParams(location.search)
const user = params.get('user')?.trim() ?? ''
/** `?share=1`: the user's tabs share one socket (belfry/shared). */
const share = params.get('share') === '1'

if (user === '') {
  showSignIn()
} else {
  start(user)
}

function showSignIn(): void {
  const form = byTestId('signin-form', HTMLFormElement)
  const input = byTestId('signin-user', HTMLInputElement)
  document.getElementById('signin')?.removeAttribute('hidden')
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    const id = input.value.trim()
    if (id !== '') location.search = `?user=${encodeURIComponent(id)}`
  })
  input.focus()
  input.select()
}

function start(user: string): void {
  document.title = `${user} · belfry demo`
  byTestId('user', HTMLElement).textContent = user
  document.getElementById('session')?.removeAttribute('hidden')
  document.getElementById('app')?.removeAttribute('hidden')
  byTestId('hint', HTMLElement).hidden = false
  byTestId('second-tab', HTMLAnchorElement).href = location.href
  byTestId('react-page', HTMLAnchorElement).search = location.search

  const dev = new DevServer(user)
  const client = new NotificationClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`,
    token: dev.token, // fetches a fresh token on every connect
    ...(share && { connection: sharedConnection() }),
  })
  // For the browser console (try `await belfry.history()`), and the browser tests.
  Object.assign(globalThis, { belfry: client })

  // Errors go to a discreet footer line, never the console.
  const errorLine = byTestId('error', HTMLElement)
  const report = (error: unknown) => {
    errorLine.hidden = false
    errorLine.textContent = `${new Date().toLocaleTimeString()} · ${describe(error)}`
  }
  client.on('error', report)
  client.on('status', (e) => {
    if (e.to === 'closed') report(new Error(`Connection closed (${e.reason}). Reload the page to connect again.`))
  })

  const toast = createToasts(byTestId('toasts', HTMLElement), byTestId('toast-more', HTMLElement))
  client.on('notification', toast)
  createInbox(client, report)
  createStatus(client, () => dev.drop(), report, share)
  createSend(client, dev, report)
  createDesktop(client, user, report)

  client.connect()
  // Closing sends the pending ack; a page restored from the back-forward cache starts afresh.
  addEventListener('pagehide', () => client.close())
  addEventListener('pageshow', (e) => {
    if (e.persisted) location.reload()
  })
}
