import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { mintToken, NotificationServer } from '../../src/server/index.js'
import { signToken } from '../helpers/jwt.js'
import { runCli, type ServerProcess, spawnServer } from '../helpers/process.js'
import { API_KEY, httpPublish, rawClient, SECRET } from '../helpers/server.js'

const dir = mkdtempSync(join(tmpdir(), 'belfry-durable-'))
const env = { BELFRY_SECRET: SECRET, BELFRY_API_KEY: API_KEY, BELFRY_DB: join(dir, 'belfry.db') }
const running: ServerProcess[] = []

afterAll(() => {
  for (const p of running) p.child.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

describe('durability', () => {
  it('keeps every notification answered 201 across kill -9, and resumes from since', async () => {
    const first = await spawnServer(env)
    running.push(first)
    const ids: string[] = []
    for (let i = 0; i < 300; i++) {
      const res = await httpPublish(first.url, { userId: 'dana', title: `n${i}`, body: `body ${i}` })
      expect(res.status).toBe(201)
      ids.push((res.json.ids as string[])[0]!)
    }
    first.child.kill('SIGKILL')
    await new Promise((resolve) => first.child.once('exit', resolve))

    const second = await spawnServer({ ...env, HOST: '127.0.0.1' })
    running.push(second)
    expect(second.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/) // HOST is honoured, and printed
    const client = await rawClient(second.wsUrl)
    client.send({ type: 'auth', token: await mintToken(SECRET, 'dana'), since: 0 })
    await client.next((f) => f.type === 'replayed' && f.more === false)
    const got = client.of('notification')
    expect(got.map((n) => n.id)).toEqual(ids)
    expect(got.map((n) => n.seq)).toEqual(ids.map((_, i) => i + 1))
    expect(got.map((n) => n.title)).toEqual(ids.map((_, i) => `n${i}`))

    // Resuming from a cursor replays only what came after it.
    const resumed = await rawClient(second.wsUrl)
    resumed.send({ type: 'auth', token: await mintToken(SECRET, 'dana'), since: 290 })
    await resumed.next((f) => f.type === 'replayed' && f.more === false)
    expect(resumed.of('notification').map((n) => n.seq)).toEqual([291, 292, 293, 294, 295, 296, 297, 298, 299, 300])
    client.close()
    resumed.close()
    second.child.kill('SIGTERM')
  }, 60_000)
})

describe('belfry-server start-up', () => {
  it('says a malformed BELFRY_REDIS_URL (a port past 65535, a bad IPv6 host) in one line naming Redis, without its password', async () => {
    for (const [i, url] of ['redis://127.0.0.1:99999', 'redis://[::zz]:6379', 'redis://ops:hunter2secret@127.0.0.1:70000'].entries()) {
      const { code, stderr } = await runCli({ ...env, BELFRY_DB: join(dir, `redis-url-${i}.db`), BELFRY_REDIS_URL: url })
      expect(code, url).toBe(1)
      expect(stderr, url).toMatch(/^belfry-server: .*(BELFRY_REDIS_URL|Redis).*\n$/)
      expect(stderr).not.toContain('hunter2secret')
    }
  }, 60_000)
  it('refuses to start outside dev mode without BELFRY_SECRET and BELFRY_API_KEY, saying what to set', async () => {
    const { code, stderr } = await runCli({ BELFRY_DB: join(dir, 'refused.db') })
    expect(code).toBe(1)
    expect(stderr).toContain('BELFRY_SECRET and BELFRY_API_KEY must be set')
  }, 20_000)

  it('says in one line why it cannot start (port in use, HOST not of this machine, database directory missing), without a stack trace', async () => {
    const holder = createServer()
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve))
    try {
      const port = String((holder.address() as AddressInfo).port)
      const base = { BELFRY_SECRET: SECRET, BELFRY_API_KEY: API_KEY }
      const taken = await runCli({ ...base, PORT: port, HOST: '127.0.0.1', BELFRY_DB: join(dir, 'taken.db') })
      expect(taken.code).toBe(1)
      expect(taken.stderr).toMatch(/^belfry-server: .*EADDRINUSE.*\n$/)
      // An address of no interface here: HOST named, as every other bad variable is (Node's words name none).
      const elsewhere = await runCli({ ...base, HOST: '10.255.255.1', BELFRY_DB: join(dir, 'elsewhere.db') })
      expect(elsewhere.code).toBe(1)
      expect(elsewhere.stderr).toMatch(
        /^belfry-server: HOST must be a name or address of this machine .*, got "10\.255\.255\.1" \(.*EADDRNOTAVAIL.*\)\n$/,
      )
      const nowhere = await runCli({ ...base, BELFRY_DB: join(dir, 'no', 'such', 'dir', 'belfry.db') })
      expect(nowhere.code).toBe(1)
      expect(nowhere.stderr).toMatch(/^belfry-server: .*directory.*\n$/)
      // PostgreSQL or Redis that cannot be reached: one line, not a retry loop.
      const pgDown = await runCli({ ...base, BELFRY_DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/belfry` })
      expect(pgDown.code).toBe(1)
      expect(pgDown.stderr).toMatch(/^belfry-server: cannot use PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:\d+\/belfry: .+\n$/)
      const redisDown = await runCli({ ...base, BELFRY_DB: join(dir, 'redis-down.db'), BELFRY_REDIS_URL: `redis://127.0.0.1:${port}` })
      expect(redisDown.code).toBe(1)
      expect(redisDown.stderr).toMatch(/^belfry-server: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: .+\n$/)
      // A corrupted store refuses to start (it used to start, report ok and take publishes).
      writeFileSync(join(dir, 'junk.db'), 'x'.repeat(8192))
      const junk = await runCli({ ...base, BELFRY_DB: join(dir, 'junk.db') })
      expect(junk.code).toBe(1)
      expect(junk.stderr).toMatch(/^belfry-server: the SQLite database ".*junk\.db" cannot be used: file is not a database\n$/)
    } finally {
      holder.close()
    }
  }, 20_000)

  it('starts in dev mode without them, on loopback, warns loudly, and mints demo tokens', async () => {
    const dev = await spawnServer({ BELFRY_SECRET: '', BELFRY_API_KEY: '', BELFRY_DB: join(dir, 'dev.db') }, ['--dev'])
    running.push(dev)
    expect(dev.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    await vi.waitFor(() => expect(dev.stderr()).toMatch(/DEV MODE/))
    const res = await fetch(`${dev.url}/api/dev/token?user=demo`)
    expect(res.status).toBe(200)
    const { token } = (await res.json()) as { token: string }
    const client = await rawClient(dev.wsUrl)
    client.send({ type: 'auth', token })
    expect(await client.next((f) => f.type === 'auth_success')).toMatchObject({ userId: 'demo' })
    client.close()
    dev.child.kill('SIGTERM')
  }, 20_000)

  it('never signs with the environment’s secret in dev mode: what it mints is refused by a production server', async () => {
    // The environment's secrets, not its store (refused in dev mode): the dev server's own file, in its directory.
    const devDir = mkdtempSync(join(dir, 'dev-'))
    const dev = await spawnServer({ BELFRY_SECRET: SECRET, BELFRY_API_KEY: API_KEY }, ['--dev'], devDir)
    const prod = await spawnServer({ ...env, BELFRY_DB: join(dir, 'prod.db') })
    running.push(dev, prod)
    const leaked = (await (await fetch(`${dev.url}/api/dev/token?user=victim`)).json()) as { token: string; apiKey: string }
    expect(leaked.apiKey).not.toBe(env.BELFRY_API_KEY)
    const client = await rawClient(prod.wsUrl)
    client.send({ type: 'auth', token: leaked.token, since: 0 })
    expect(await client.next((f) => f.type === 'auth_error')).toMatchObject({ code: 'token_invalid' })
    const publish = await fetch(`${prod.url}/api/notifications`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${leaked.apiKey}` },
      body: JSON.stringify({ broadcast: true, title: 'pwned', body: '' }),
    })
    expect(publish.status).toBe(401)
    dev.child.kill('SIGTERM')
    prod.child.kill('SIGTERM')
    expect(existsSync(join(devDir, 'belfry-dev.db'))).toBe(true)
  }, 20_000)

  it('takes no production store in dev mode: its inboxes would go to whoever asks /api/dev/token', async () => {
    // Production's file, in the directory production runs in (its default name there), with a private notification.
    const prodDir = mkdtempSync(join(dir, 'prod-'))
    const file = join(prodDir, 'belfry.db')
    const prod = new NotificationServer({ secret: SECRET, apiKey: API_KEY, database: file, logger: pino({ level: 'silent' }) })
    await prod.sendToUser('victim', { title: 'payroll', body: 'Your salary: 123,456' })
    await prod.close()

    // `--dev` in production's environment (a debugging session on the box): refused, naming what to unset.
    const refused = await runCli({ BELFRY_SECRET: SECRET, BELFRY_API_KEY: API_KEY, BELFRY_DB: file }, ['--dev'])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(
      /^belfry-server: dev mode takes no store from an environment that holds BELFRY_SECRET and BELFRY_API_KEY: BELFRY_DB may be production's/,
    )

    // Without BELFRY_DB, in production's directory: a file of its own, where the victim has nothing.
    const dev = await spawnServer({ BELFRY_SECRET: SECRET, BELFRY_API_KEY: API_KEY }, ['--dev'], prodDir)
    running.push(dev)
    const { token } = (await (await fetch(`${dev.url}/api/dev/token?user=victim`)).json()) as { token: string }
    const client = await rawClient(dev.wsUrl)
    client.send({ type: 'auth', token, since: 0 })
    await client.next((f) => f.type === 'replayed' && f.more === false)
    expect(client.of('notification')).toEqual([])
    client.close()
    dev.child.kill('SIGTERM')
  }, 30_000)

  it('enforces the token claim named by BELFRY_TOPICS_CLAIM on subscriptions', async () => {
    const server = await spawnServer({ ...env, BELFRY_DB: join(dir, 'claims.db'), BELFRY_TOPICS_CLAIM: 'topics' })
    running.push(server)
    const client = await rawClient(server.wsUrl)
    client.send({ type: 'auth', token: await signToken({ sub: 'ann', claims: { topics: ['tenant:acme:*'] } }), since: 0 })
    await client.next((f) => f.type === 'replayed')
    client.send({ type: 'subscribe', topics: ['tenant:acme:billing', 'tenant:globex:billing'], requestId: 's' })
    expect(await client.next((f) => f.requestId === 's')).toMatchObject({
      topics: ['tenant:acme:billing'],
      refused: [{ topic: 'tenant:globex:billing', code: 'forbidden' }],
    })
    client.close()
    server.child.kill('SIGTERM')
  }, 20_000)

  it('does not mint tokens without --dev', async () => {
    const prod = await spawnServer({ ...env, BELFRY_DB: join(dir, 'prod.db') })
    running.push(prod)
    expect((await fetch(`${prod.url}/api/dev/token?user=demo`)).status).toBe(404)
    prod.child.kill('SIGTERM')
  }, 20_000)
})

describe('belfry-server shutdown', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    'on %s closes every client with 1001 and exits with 0',
    async (signal) => {
      const p = await spawnServer({ ...env, BELFRY_DB: join(dir, `${signal}.db`) })
      running.push(p)
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        p.child.once('exit', (code, sig) => resolve({ code, signal: sig })),
      )
      const client = await rawClient(p.wsUrl)
      client.send({ type: 'auth', token: await mintToken(SECRET, 'sid'), since: 0 })
      await client.next((f) => f.type === 'replayed' && f.more === false)
      p.child.kill(signal)
      expect(await client.closed).toMatchObject({ code: 1001 })
      expect(await exited).toEqual({ code: 0, signal: null })
    },
    20_000,
  )
})
