/**
 * `belfry-server admin` exits 0 only on the admin API's answer: README ("prints the answer as JSON; a
 * failure is one line on stderr and exit code 1"). A URL that reaches something else answering 200 (a
 * front end's catch-all page, a proxy's sign-in page) is a failure a script must see, not a success.
 */
import { createServer, type Server } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { admin } from '../../src/server/admin-cli.js'

let server: Server | undefined
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
  server = undefined
})

/** An HTTP server that answers 200 with this body and type to every request. */
async function answering(type: string, body: string): Promise<string> {
  server = createServer((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': type }).end(body)
  })
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
}

async function run(args: string[], env: NodeJS.ProcessEnv) {
  let out = ''
  let err = ''
  const code = await admin(
    args,
    env,
    (s) => {
      out += s
    },
    (s) => {
      err += s
    },
  )
  return { code, out, err }
}

describe('belfry-server admin: an answer that is not the admin API’s', () => {
  it.each([
    ['user', 'ann'],
    ['prune', '--days', '30'],
    ['unsubscribe', 'ann', 'team-a'],
  ])('admin %s … against a 200 HTML page fails (exit 1, one line on stderr), printing nothing', async (...args) => {
    const url = await answering('text/html; charset=utf-8', '<!doctype html><title>Sign in</title><p>Please sign in')
    const { code, out, err } = await run(args, { BELFRY_API_KEY: 'review-api-key-123', BELFRY_URL: url })
    expect(code).toBe(1)
    expect(out).toBe('')
    expect(err).toMatch(/^belfry-server admin: .+\n$/)
  })
})
