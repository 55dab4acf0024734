/**
 * Review: `belfry-server admin` prints the `message` of a refusal as the answer wrote it: a
 * front end's JSON error with a newline (a stack trace) or a terminal escape makes the "one
 * line on stderr" the README promises several, and writes the escape to the operator's
 * terminal.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { expect, it, onTestFinished } from 'vitest'
import { admin } from '../../src/server/admin-cli.js'

it('a refusal whose message holds a newline and an escape is still one line on stderr, with no control characters', async () => {
  const http = createServer((_req, res) => {
    res
      .writeHead(502, { 'content-type': 'application/json' })
      .end(JSON.stringify({ message: 'upstream failed\n    at proxy.js:12\u001b[2J\u001b[31mFAKE: all good' }))
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  onTestFinished(() => new Promise((resolve) => http.close(resolve)))
  let err = ''
  const code = await admin(
    ['user', 'ann', '--url', `http://127.0.0.1:${(http.address() as AddressInfo).port}`],
    { BELFRY_API_KEY: 'test-api-key-123' },
    () => {},
    (s) => {
      err += s
    },
  )
  expect(code).toBe(1)
  expect(err.endsWith('\n') && err.split('\n')).toHaveLength(2) // one line
  expect([...err.slice(0, -1)].filter((c) => c < ' ' || c === '\u007f')).toEqual([])
})
