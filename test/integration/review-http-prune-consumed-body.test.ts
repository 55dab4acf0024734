/**
 * Review: on an app's own server, POST /api/admin/prune whose body the app read first (a body
 * parser such as express.json()) is taken as a prune without a body: belfry runs the configured
 * retention instead of the rule sent and answers 200, or, with no retention configured, tells the
 * client to send the rule it sent. A publish in that case is refused (400); a prune should not
 * run another rule than the one asked for and say it succeeded.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { expect, it, onTestFinished } from 'vitest'
import { NotificationServer } from '../../src/server/index.js'
import { API_KEY, SECRET } from '../helpers/server.js'

const headers = { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' }

it('does not answer 200 for a prune whose rule it never read, having pruned by another', async () => {
  let belfry!: NotificationServer
  const http = createServer(async (req, res) => {
    // The app's body parser reads every body first.
    req.resume()
    await new Promise((resolve) => req.once('end', resolve))
    if (!(await belfry.handleRequest(req, res))) res.writeHead(404).end()
  })
  belfry = new NotificationServer({
    secret: SECRET,
    apiKey: API_KEY,
    database: ':memory:',
    server: http,
    retention: { maxPerUser: 1 },
    logger: pino({ level: 'silent' }),
  })
  await belfry.ready()
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  onTestFinished(async () => {
    await belfry.close()
    http.closeAllConnections()
    await new Promise((resolve) => http.close(resolve))
  })
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
  for (const title of ['one', 'two', 'three']) await belfry.sendToUser('ann', { title, body: '' })
  // The operator asks to prune only what is older than 100 years: nothing here.
  const res = await fetch(`${url}/api/admin/prune`, { method: 'POST', headers, body: '{"days":36500}' })
  const json = (await res.json()) as Record<string, unknown>
  // Ran instead: the configured rule (maxPerUser 1), which removed two of ann's three entries.
  expect({ status: res.status, json }).not.toMatchObject({ status: 200, json: { removed: 2 } })
  expect(res.status).not.toBe(200)
  const user = (await (await fetch(`${url}/api/admin/users?id=ann`, { headers })).json()) as Record<string, unknown>
  expect(user).toMatchObject({ latestSeq: 3, floor: 0 })
})
