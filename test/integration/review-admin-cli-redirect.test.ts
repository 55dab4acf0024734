/**
 * `belfry-server admin` against a URL that redirects (a load balancer's http → https, a moved host): the
 * failure says where the server sent it, so the operator fixes the URL. Followed, the redirect loses the
 * key (fetch drops Authorization on a cross-origin redirect) and turns a POST into a GET, and the command
 * reported a refusal of the right key, or of its own method, instead.
 */
import { createServer, type Server } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { admin } from '../../src/server/admin-cli.js'
import { API_KEY, useServer } from '../helpers/server.js'

const start = useServer()

let server: Server | undefined
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
  server = undefined
})

/** An HTTP server that answers every request with `status` and `Location: <to><path>`. */
async function redirecting(status: number, to: string): Promise<string> {
  server = createServer((req, res) => {
    req.resume()
    res.writeHead(status, { location: `${to}${req.url}` }).end()
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

describe('belfry-server admin: a server URL that redirects', () => {
  it.each([
    [301, 'user ann'],
    [301, 'prune --max-per-user 5'],
    [308, 'user ann'],
  ] as const)('%i to admin %s: fails naming where it was sent, not as a refused key or method', async (status, command) => {
    const t = await start({ retention: { maxPerUser: 5 } })
    // The real server, at another origin (another port, as https:// is to http://).
    const url = await redirecting(status, t.url)
    const { code, out, err } = await run(command.split(' '), { BELFRY_API_KEY: API_KEY, BELFRY_URL: url })
    expect([code, out]).toEqual([1, ''])
    expect(err).toMatch(/^belfry-server admin: .+\n$/)
    expect(err).toContain(t.url)
    expect(err).not.toMatch(/^belfry-server admin: 40[15] /)
  })
})
