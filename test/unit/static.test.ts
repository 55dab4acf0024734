import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { serveDemo } from '../../src/server/static.js'

const root = mkdtempSync(join(tmpdir(), 'belfry-static-'))
const server = createServer(serveDemo(root))
let port = 0

beforeAll(async () => {
  writeFileSync(join(root, 'index.html'), '<h1>demo</h1>')
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  port = (server.address() as AddressInfo).port
})
afterAll(() => {
  server.close()
  rmSync(root, { recursive: true, force: true })
})

/** A raw GET, so that the path reaches the server as written. */
function get(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
      .on('error', reject)
      .end()
  })
}

describe('the demo page files (dev mode)', () => {
  it('serves index.html for /, and nothing outside its directory', async () => {
    expect(await get('/')).toEqual({ status: 200, body: '<h1>demo</h1>' })
    expect((await get('/../../etc/passwd')).status).toBe(404)
    expect((await get('/%2e%2e/%2e%2e/etc/passwd')).status).toBe(404)
  })

  it('answers a malformed percent escape with 400, not 500', async () => {
    expect(await get('/%E0%A4%A')).toEqual({ status: 400, body: 'bad path' })
  })
})
