import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { serveDemo } from '../../src/server/static.js'

const dir = mkdtempSync(join(tmpdir(), 'belfry-review-static-'))
const server = createServer(serveDemo(dir))
let url = ''

beforeAll(async () => {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'index.html'), '<h1>demo</h1>')
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => {
  server.close()
  rmSync(dir, { recursive: true, force: true })
})

// The fix made /healthz, /metrics and the admin user route say `Allow: GET, HEAD`; the demo page (dev mode's
// fallback) serves HEAD too, and its 405 still leaves HEAD out.
describe('the demo page served by belfry-server --dev', () => {
  it('serves HEAD, and its 405 lists HEAD in Allow', async () => {
    expect((await fetch(`${url}/`, { method: 'HEAD' })).status).toBe(200)
    const put = await fetch(`${url}/`, { method: 'PUT' })
    expect(put.status).toBe(405)
    expect(put.headers.get('allow')).toBe('GET, HEAD')
  })
})
