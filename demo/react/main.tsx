/**
 * The belfry demo page in React, on belfry/react: the same server and the
 * same features as the vanilla page (index.html), written with the provider
 * and its hooks. It uses only the public APIs of `belfry` and its entries
 * (`belfry/react`, `belfry/shared`, `belfry/desktop`). StrictMode is on: its
 * mount, unmount and mount keep one client and one socket.
 */
import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { App, SignIn } from './app.js'

const params = new URLSearchParams(location.search)
const user = params.get('user')?.trim() ?? ''
/** `?share=1`: the user's tabs share one socket (belfry/shared). */
const share = params.get('share') === '1'
const root = document.getElementById('root')
if (!root) throw new Error('demo: missing #root')

createRoot(root).render(<StrictMode>{user === '' ? <SignIn /> : <App user={user} share={share} />}</StrictMode>)
