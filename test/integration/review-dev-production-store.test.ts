import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterAll, describe, expect, it } from 'vitest'
import { NotificationServer } from '../../src/server/index.js'
import { type ServerProcess, spawnServer } from '../helpers/process.js'
import { API_KEY, rawClient, SECRET } from '../helpers/server.js'

// README, Security: dev mode "always runs on the published dev secrets … and ignores BELFRY_SECRET and
// BELFRY_API_KEY from the environment …, so nothing dev mode mints is valid elsewhere". That guards the case of
// `belfry-server --dev` started in a shell (or a container, a CI job) that holds the production environment. But dev
// mode takes the production *store* from that same environment (BELFRY_DB, BELFRY_DATABASE_URL, and the Redis of
// BELFRY_REDIS_URL): its /api/dev/token then mints a token for any production user, and that token reads the user's
// production inbox on the dev server. Nothing dev mode mints needs to be valid elsewhere when dev mode serves the
// production data itself.

const dir = mkdtempSync(join(tmpdir(), 'belfry-review-devstore-'))
const prodEnv = { BELFRY_SECRET: SECRET, BELFRY_API_KEY: API_KEY, BELFRY_DB: join(dir, 'production.db') }
const running: ServerProcess[] = []

afterAll(() => {
  for (const p of running) p.child.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

describe('dev mode started with the production environment', () => {
  it('does not hand a production user’s inbox to whoever asks /api/dev/token', async () => {
    // Production: a private notification for the victim, in the production store.
    const prod = new NotificationServer({ secret: SECRET, apiKey: API_KEY, database: prodEnv.BELFRY_DB, logger: pino({ level: 'silent' }) })
    await prod.sendToUser('victim', { title: 'payroll', body: 'Your salary: 123,456' })
    await prod.close()

    // The same environment, with --dev (`npm start` in the production checkout, a debugging session on the box).
    let dev: ServerProcess
    try {
      dev = await spawnServer(prodEnv, ['--dev'])
    } catch {
      return // refusing to start dev mode on a production store is a fix too
    }
    running.push(dev)
    const { token } = (await (await fetch(`${dev.url}/api/dev/token?user=victim`)).json()) as { token: string }
    const client = await rawClient(dev.wsUrl)
    client.send({ type: 'auth', token, since: 0 })
    await client.next((f) => f.type === 'replayed' && f.more === false)
    const leaked = client.of('notification').map((f) => f.title)
    client.close()
    dev.child.kill('SIGTERM')
    // Secure: dev mode never serves the production store's notifications (own store, or refuses to start).
    expect(leaked).toEqual([])
  }, 30_000)
})
