import { describe, expect, it } from 'vitest'
import { rawClient, useServer } from '../helpers/server.js'

const start = useServer()

// Browsers send these in the Origin header as they are (a browser extension's page, a Tauri or Capacitor
// app's webview): `new URL(o).origin` is "null" for a scheme the URL standard does not know, so they
// must not be refused as "no origin as browsers send it".
describe('allowedOrigins: origins of schemes other than http(s)', () => {
  for (const origin of [
    'chrome-extension://abcdefghijklmnopabcdefghijklmnop',
    'moz-extension://0f2a5c1e-1234-4abc-9def-0123456789ab',
    'tauri://localhost',
    'capacitor://localhost',
  ]) {
    it(`takes ${origin}, and lets a socket from it authenticate`, async () => {
      const s = await start({ allowedOrigins: [origin] })
      const c = await rawClient(s.wsUrl, { origin })
      c.send({ type: 'auth', token: await s.token('alice'), userId: 'alice' })
      await expect(c.next((f) => f.type === 'auth_success')).resolves.toMatchObject({ userId: 'alice' })
      c.close()
    })
  }
})
