/**
 * Review: `belfry-server admin --url http://host/belfry` (a server behind a proxy under a
 * path) sends its request to http://host/api/admin/… : `new URL(path, url)` with an absolute
 * path drops the URL's own path, so the command reaches whatever else serves /api/admin/ on
 * that host (a prune is a POST to it). The URL given is the server's: its path is kept.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { expect, it, onTestFinished } from 'vitest'
import { admin } from '../../src/server/admin-cli.js'

it('keeps the path of --url: admin user goes to <url>/api/admin/users, not to the host’s root', async () => {
  const paths: string[] = []
  const http = createServer((req, res) => {
    paths.push(req.url ?? '')
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found","message":"not here"}')
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  onTestFinished(() => new Promise((resolve) => http.close(resolve)))
  const port = (http.address() as AddressInfo).port
  const errors: string[] = []
  await admin(
    ['user', 'ann', '--url', `http://127.0.0.1:${port}/belfry`],
    { BELFRY_API_KEY: 'test-api-key-123' },
    () => {},
    (s) => {
      errors.push(s)
    },
  )
  expect(paths).toEqual(['/belfry/api/admin/users?id=ann'])
})
