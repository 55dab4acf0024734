/** The admin API (GET /api/admin/users?id=, POST /api/admin/prune) and `belfry-server admin`. */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest'
import { CloseCode } from '../../src/protocol/index.js'
import { admin as adminCommand } from '../../src/server/admin-cli.js'
import { SqliteStore } from '../../src/server/index.js'
import { range } from '../helpers/client.js'
import { type ServerProcess, spawnServer } from '../helpers/process.js'
import { API_KEY, authedClient, httpPublish, rawClient, trickledPost, useServer } from '../helpers/server.js'

const start = useServer()
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

function admin(url: string, method: string, path: string, init: { key?: string | undefined; body?: string } = {}) {
  const { key = API_KEY, body } = init
  return fetch(`${url}/api/admin/${path}`, {
    method,
    headers: { ...(key && { authorization: `Bearer ${key}` }), ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body }),
  })
}

/** `belfry-server admin <args>` in this process: its exit code and what it wrote to stdout and stderr. */
async function command(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const code = await adminCommand(
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

describe('admin API', () => {
  // Regression: read as UTF-8, "Ã©" sent in ISO-8859-1 (bytes C3 A9) was the user "é", whose subscriptions it ended.
  it('refuses a body declared in a charset other than UTF-8 (415), rather than read it as another user’s id', async () => {
    const s = await start()
    const other = await authedClient(s, 'é')
    other.send({ type: 'subscribe', topics: ['team-a'], requestId: 's' })
    await other.next((f) => f.requestId === 's')
    // "Ã©" in ISO-8859-1 (bytes C3 A9: "é" read as UTF-8), and "é" in it (E9: no valid UTF-8).
    for (const userId of ['Ã©', 'é']) {
      const res = await fetch(`${s.url}/api/admin/unsubscribe`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json; charset=iso-8859-1' },
        body: new Uint8Array(Buffer.from(`{"userId":"${userId}","topics":["team-a"]}`, 'latin1')),
      })
      expect([res.status, await res.json()], userId).toEqual([415, expect.objectContaining({ error: 'unsupported_media_type' })])
    }
    // Still subscribed.
    expect(await s.server.publish('team-a', { title: 't', body: '' })).toMatchObject({ recipients: 1 })
    other.close()
  })

  // Regression: the first charset check refused every body declared in another charset than UTF-8, also one that
  // UTF-8 reads as sent: ASCII, and no body at all.
  it('takes a body declared in another charset that UTF-8 reads as sent: ASCII, or none', async () => {
    const t = await start({ retention: { maxPerUser: 2 } })
    const post = (type: string, body?: string) =>
      fetch(`${t.url}/api/admin/prune`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': type },
        ...(body !== undefined && { body }),
      })
    // ASCII bytes are the same text in UTF-8: nothing to misread.
    expect((await post('application/json; charset=us-ascii', '{"maxPerUser":1}')).status).toBe(200)
    // No body: nothing to read at all (an HTTP client whose default Content-Type names ISO-8859-1).
    expect((await post('text/plain; charset=ISO-8859-1')).status).toBe(200)
  })

  it('answers only with the API key: 401 without it or with another', async () => {
    const t = await start({ retention: { maxPerUser: 2 } })
    for (const [method, path] of [
      ['GET', 'users/ann'],
      ['POST', 'prune'],
    ] as const) {
      for (const key of [undefined, 'wrong-key-123']) {
        const res = await admin(t.url, method, path, { key: key ?? '' })
        expect(res.status, `${method} ${path} ${key}`).toBe(401)
        expect(res.headers.get('www-authenticate')).toBe('Bearer')
        expect(await res.json()).toMatchObject({ error: 'unauthorized' })
      }
    }
  })

  it('says a user’s counters, its floor and its connections here; 404 for a user the store does not know', async () => {
    const t = await start({ retention: { maxPerUser: 2 } })
    for (const i of range(1, 5)) await httpPublish(t.url, { userId: 'ann/1', title: `n${i}`, body: '' })
    const ann = await authedClient(t, 'ann/1', { since: 3 })
    ann.send({ type: 'ack', seq: 5 })
    await expect
      .poll(async () => (await admin(t.url, 'GET', `users/${encodeURIComponent('ann/1')}`)).json())
      .toEqual({ userId: 'ann/1', latestSeq: 5, ackedSeq: 5, unreadCount: 5, floor: 0, connections: 1 })
    ann.close()
    const missing = await admin(t.url, 'GET', 'users/nobody')
    expect(missing.status).toBe(404)
    expect(await missing.json()).toEqual({ error: 'not_found', message: 'no user "nobody"' })
    // Looking a user up does not make one: a broadcast still reaches nobody.
    expect((await httpPublish(t.url, { broadcast: true, title: 'all', body: '' })).json.recipients).toBe(1)
    expect((await admin(t.url, 'GET', 'users/%E0%A4%A')).status).toBe(400)
    expect((await admin(t.url, 'POST', 'users/ann')).status).toBe(405)
    expect((await admin(t.url, 'GET', 'nope')).status).toBe(404)
  })

  // Regression: a user id that is a dot segment ('.' or '..', plain or percent-encoded) was resolved away with
  // the URL's path: GET /api/admin/users/.. and `admin user ..` answered 404 "no route".
  it('counts among a user’s connections none whose auth still reads the store (as /healthz does)', async () => {
    // It counted every connection from its sign-in: one whose store read then failed (1011) never authenticated.
    const dir = mkdtempSync(join(tmpdir(), 'belfry-admin-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const store = new SqliteStore(join(dir, 'belfry.db'))
    const touchUser = store.touchUser.bind(store)
    let fail: ((error: Error) => void) | undefined
    store.touchUser = (userId) => (userId === 'ann' && !fail ? new Promise((_, reject) => (fail = reject)) : touchUser(userId))
    const s = await start({ store })
    await s.server.sendToUser('ann', { title: 'hi', body: '' }) // a user the store knows
    const c = await rawClient(s.wsUrl)
    c.send({ type: 'auth', token: await s.token('ann'), since: 0 })
    await vi.waitFor(() => expect(fail).toBeDefined())
    expect(await (await admin(s.url, 'GET', 'users?id=ann')).json()).toMatchObject({ userId: 'ann', connections: 0 })
    fail!(new Error('the database went away'))
    expect((await c.closed).code).toBe(CloseCode.InternalError)
    await authedClient(s, 'ann')
    expect(await (await admin(s.url, 'GET', 'users?id=ann')).json()).toMatchObject({ userId: 'ann', connections: 1 })
  })

  it('looks up any user id, dot segments too, with ?id= (what admin user sends)', async () => {
    const t = await start()
    const ids = ['..', '.', 'a?b#c', 'x+y z']
    for (const userId of ids) await httpPublish(t.url, { userId, title: 'n', body: '' })
    for (const userId of ids) {
      const res = await admin(t.url, 'GET', `users?id=${encodeURIComponent(userId)}`)
      expect(await res.json(), userId).toMatchObject({ userId, latestSeq: 1 })
      const { code: exit, out } = await command(['user', userId], { BELFRY_API_KEY: API_KEY, BELFRY_URL: t.url })
      expect([exit, JSON.parse(out || 'null')], userId).toEqual([0, expect.objectContaining({ userId, latestSeq: 1 })])
    }
    const none = await admin(t.url, 'GET', 'users')
    expect([none.status, await none.json()]).toEqual([
      400,
      { error: 'bad_request', message: 'which user? GET /api/admin/users?id=<id> (or /api/admin/users/<id>)' },
    ])
  })

  // Regression (a gap): an authorizer is asked at subscribe and at each auth only; a grant the app revoked
  // went on filling the user's inbox until the user's next auth, which then replayed it all.
  it('ends a revoked grant at once: POST /api/admin/unsubscribe (and admin unsubscribe), then the topic reaches the user no more', async () => {
    const granted = new Set(['ann:team-a', 'ann:team-b'])
    const t = await start({ authorizeSubscribe: (userId, topic) => granted.has(`${userId}:${topic}`) })
    const ann = await authedClient(t, 'ann')
    ann.send({ type: 'subscribe', topics: ['team-a', 'team-b'], requestId: 's' })
    expect(await ann.next((f) => f.type === 'subscribed')).toMatchObject({ topics: ['team-a', 'team-b'] })
    ann.close()
    // The app revokes both grants in its records, and ends the subscriptions now: one over HTTP, one with the command.
    granted.clear()
    const res = await admin(t.url, 'POST', 'unsubscribe', { body: JSON.stringify({ userId: 'ann', topics: ['team-a'] }) })
    expect([res.status, await res.json()]).toEqual([200, { userId: 'ann', topics: ['team-a'] }])
    const { code: exit, out } = await command(['unsubscribe', 'ann', 'team-b'], { BELFRY_API_KEY: API_KEY, BELFRY_URL: t.url })
    expect([exit, JSON.parse(out || 'null')]).toEqual([0, { userId: 'ann', topics: ['team-b'] }])
    for (const topic of ['team-a', 'team-b']) {
      expect((await httpPublish(t.url, { topic, title: `after ${topic}`, body: '' })).json.recipients).toBe(0)
    }
    expect((await admin(t.url, 'GET', 'users?id=ann')).status).toBe(200)
    const again = await authedClient(t, 'ann', { since: 0 })
    expect(again.of('notification')).toEqual([])
    again.close()
    // A bad body: 400 with the reason; not the method: 405.
    const bad: [string, string][] = [
      ['{}', 'body.userId must be a user id'],
      ['{"userId":"ann","topics":[]}', 'body.topics must be an array of 1–1000 topics'],
      ['{"userId":"ann","topics":["a",""]}', 'body.topics[1] must be a topic of 1–'],
      ['{"userId":"ann","topics":["a"],"all":true}', 'body.all is not a field (userId, topics)'],
      ['nope', 'body must be a JSON object'],
    ]
    for (const [body, message] of bad) {
      const res = await admin(t.url, 'POST', 'unsubscribe', { body })
      expect([res.status, ((await res.json()) as { message: string }).message], body).toEqual([400, expect.stringContaining(message)])
    }
    expect((await admin(t.url, 'GET', 'unsubscribe')).status).toBe(405)
    // The library call checks its arguments as the route does.
    await expect(t.server.unsubscribe('', ['a'])).rejects.toThrow(
      new TypeError('unsubscribe: userId must be a user id of 1–64 characters; got ""'),
    )
    await expect(t.server.unsubscribe('ann', 'team-a' as unknown as string[])).rejects.toThrow(
      'unsubscribe: topics must be an array of topics of 1–128 characters; got "team-a"',
    )
  })

  it('reads a prune body as publishing does: 408 for one that does not arrive in time, 413 for one too large', async () => {
    const t = await start({ retention: { maxPerUser: 3 }, limits: { bodyTimeoutMs: 300 } })
    const trickled = await trickledPost(t.port, '/api/admin/prune', { authorization: `Bearer ${API_KEY}` }, '{"maxPerUser":')
    expect(trickled).toEqual({ status: 408, json: { error: 'request_timeout', message: 'the body must arrive within 300 ms' } })
    const large = await admin(t.url, 'POST', 'prune', { body: `{"maxPerUser":1${' '.repeat(2000)}}` })
    expect(large.status).toBe(413)
    expect(await large.json()).toEqual({ error: 'payload_too_large', message: 'body must be at most 1024 bytes' })
  })

  it('prunes now with the configured rule or the body’s, says what went, and refuses a bad body with the reason', async () => {
    const t = await start({ retention: { maxPerUser: 3 } })
    for (const i of range(1, 6)) await httpPublish(t.url, { userIds: ['ann', 'bob'], title: `n${i}`, body: '' })
    const bad: [string, string][] = [
      ['nope', 'body is not valid JSON'],
      ['[1]', 'body must be an object { days?, maxPerUser? }, got an object'],
      ['{"days":-1}', 'body.days must be a number of days > 0 and ≤ 36500, got -1'],
      ['{"maxPerUser":"3"}', 'body.maxPerUser must be a whole number ≥ 1, got "3"'],
      ['{"keep":3}', 'body.keep is not a retention setting (days, maxPerUser)'],
    ]
    for (const [body, message] of bad) {
      const res = await admin(t.url, 'POST', 'prune', { body })
      expect(res.status, body).toBe(400)
      expect(await res.json()).toEqual({ error: 'bad_request', message })
    }
    expect((await admin(t.url, 'GET', 'prune')).status).toBe(405)
    const configured = await admin(t.url, 'POST', 'prune')
    expect(configured.status).toBe(200)
    // 3 entries each went; the 3 notifications they held are deleted with them.
    expect(await configured.json()).toEqual({ removed: 6, unread: 6, users: 2, notifications: 3 })
    const given = await admin(t.url, 'POST', 'prune', { body: '{"maxPerUser":1}' })
    expect(await given.json()).toEqual({ removed: 4, unread: 4, users: 2, notifications: 2 })
    expect(await (await admin(t.url, 'GET', 'users/bob')).json()).toMatchObject({ latestSeq: 6, unreadCount: 1, floor: 5 })
    // Nothing older than a day: nothing goes.
    expect(await (await admin(t.url, 'POST', 'prune', { body: '{"days":1}' })).json()).toMatchObject({ removed: 0 })
  })

  it('without a configured retention, prunes only with a rule in the body', async () => {
    const t = await start()
    await httpPublish(t.url, { userId: 'ann', title: 'one', body: '' })
    for (const body of [undefined, '', '{}']) {
      const res = await admin(t.url, 'POST', 'prune', body === undefined ? {} : { body })
      expect(res.status).toBe(400)
      expect(await res.json()).toEqual({
        error: 'bad_request',
        message: 'no retention is configured: send {"days": N} or {"maxPerUser": N}',
      })
    }
    expect(await (await admin(t.url, 'POST', 'prune', { body: '{"maxPerUser":1}' })).json()).toMatchObject({ removed: 0 })
  })
})

/** Runs `belfry-server admin <args>` and resolves with its exit code and output. */
function runAdmin(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/cli.ts', 'admin', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    child.once('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

describe('belfry-server admin', () => {
  it('names a BELFRY_API_KEY that cannot be a key (non-ASCII, a control) in one line, not as a server it cannot reach', async () => {
    const t = await start()
    for (const key of ['ключ-админа-123', 'admin\u0001key-123']) {
      const { code, out, err } = await command(['user', 'ann'], { BELFRY_API_KEY: key, BELFRY_URL: t.url })
      expect(code, JSON.stringify(key)).not.toBe(0)
      expect(out).toBe('')
      expect(err.split('\n')).toHaveLength(2) // one line
      expect(err).not.toMatch(/cannot reach/)
      expect(err).toMatch(/^belfry-server admin: .*BELFRY_API_KEY/)
    }
  })
  const KEY = 'cli-admin-key-123'
  let server: ServerProcess
  let dir: string
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'belfry-admin-'))
    server = await spawnServer({
      BELFRY_SECRET: 'cli-admin-secret-0123456789',
      BELFRY_API_KEY: KEY,
      BELFRY_DB: join(dir, 'belfry.db'),
      BELFRY_RETENTION_MAX_PER_USER: '2',
      HOST: '127.0.0.1',
    })
    for (const i of range(1, 4)) await httpPublish(server.url, { userId: 'bob', title: `n${i}`, body: '' }, KEY)
  }, 30_000)
  afterAll(() => {
    server?.child.kill('SIGTERM')
    rmSync(dir, { recursive: true, force: true })
  })

  it('admin user and admin prune call the running server and print its answer', async () => {
    const env = { BELFRY_API_KEY: KEY, BELFRY_URL: server.url }
    const user = await runAdmin(['user', 'bob'], env)
    expect(user).toMatchObject({ code: 0, stderr: '' })
    expect(JSON.parse(user.stdout)).toEqual({ userId: 'bob', latestSeq: 4, ackedSeq: 0, unreadCount: 4, floor: 0, connections: 0 })
    // The configured rule (BELFRY_RETENTION_MAX_PER_USER=2) unless the command gives one; --url over BELFRY_URL.
    const configured = await runAdmin(['prune', '--url', server.url], { BELFRY_API_KEY: KEY, BELFRY_URL: 'http://127.0.0.1:1' })
    expect(configured.code).toBe(0)
    expect(JSON.parse(configured.stdout)).toEqual({ removed: 2, unread: 2, users: 1, notifications: 2 })
    const given = await runAdmin(['prune', '--max-per-user=1', '--days', '30'], env)
    expect(JSON.parse(given.stdout)).toEqual({ removed: 1, unread: 1, users: 1, notifications: 1 })
    expect(JSON.parse((await runAdmin(['user', 'bob'], env)).stdout)).toMatchObject({ latestSeq: 4, floor: 3, unreadCount: 1 })
  }, 30_000)

  it('says what went wrong in one line: the server’s refusal, a missing key, an unreachable server, bad usage', async () => {
    const env = { BELFRY_API_KEY: KEY, BELFRY_URL: server.url }
    // The process: its exit code and stderr.
    const refused = await runAdmin(['prune', '--days', '0'], env)
    expect(refused).toEqual({
      code: 1,
      stdout: '',
      stderr: 'belfry-server admin: 400 body.days must be a number of days > 0 and ≤ 36500, got 0\n',
    })
    const help = await runAdmin(['--help'], {})
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/^Usage: belfry-server admin <command>[\s\S]*user <id>[\s\S]*prune \[--days N\] \[--max-per-user N\]/)
    // The rest in this process: the same function the command runs.
    const cases: [string[], Record<string, string>, number, RegExp][] = [
      [['user', 'nobody'], env, 1, /^belfry-server admin: 404 no user "nobody"$/],
      [
        ['user', 'bob'],
        { ...env, BELFRY_API_KEY: 'not-the-key' },
        1,
        /^belfry-server admin: 401 send "Authorization: Bearer <BELFRY_API_KEY>"$/,
      ],
      [['user', 'bob'], { BELFRY_URL: server.url }, 1, /^belfry-server admin: BELFRY_API_KEY must be set/],
      [['user', 'bob'], { ...env, BELFRY_URL: 'http://127.0.0.1:1' }, 1, /^belfry-server admin: cannot reach http:\/\/127\.0\.0\.1:1/],
      [['user', 'bob'], { ...env, BELFRY_URL: 'ftp://x' }, 2, /^belfry-server admin: BELFRY_URL must be an http:\/\/ or https:\/\/ URL/],
      [['user'], env, 2, /^belfry-server admin: user takes one user id \(see belfry-server admin --help\)$/],
      [['prune', '--days'], env, 2, /^belfry-server admin: --days needs a value/],
      [['prune', '--days', 'ten'], env, 2, /^belfry-server admin: --days must be a number, got "ten"/],
      // Decimal digits only: Number() read "0x2" as 2 and pruned to it.
      [['prune', '--max-per-user', '0x2'], env, 2, /^belfry-server admin: --max-per-user must be a number, got "0x2"/],
      // A URL with credentials is refused (fetch would refuse it), its password kept out of the message.
      [
        ['user', 'bob'],
        { ...env, BELFRY_URL: 'http://admin:hunter2@127.0.0.1:1' },
        2,
        /^belfry-server admin: BELFRY_URL must not hold credentials \(user info before an @; the API key is read from BELFRY_API_KEY\) \(see/,
      ],
      [['prune', '--force'], env, 2, /^belfry-server admin: unknown option --force/],
      [['purge'], env, 2, /^belfry-server admin: unknown command "purge"/],
    ]
    for (const [args, e, code, message] of cases) {
      const { code: exit, out, err } = await command(args, e)
      expect([exit, out], args.join(' ')).toEqual([code, ''])
      expect(err.endsWith('\n') && err.split('\n')).toHaveLength(2) // one line
      expect(err.trimEnd()).toMatch(message)
    }
  }, 30_000)

  it('does not print the password of a --url with credentials', async () => {
    // Regression: the message redacted its own "cannot reach http://ops:***@…" but then appended fetch's, which repeated the URL whole.
    const { code, err: stderr } = await command(['user', 'ann', '--url', 'http://ops:hunter2-s3cret@127.0.0.1:9'], {
      BELFRY_API_KEY: 'review-api-key-123',
    })
    // A usage mistake, said up front: fetch refuses a URL with credentials anyway.
    expect(code).toBe(2)
    expect(stderr).not.toContain('hunter2-s3cret')
    expect(stderr).toMatch(/^belfry-server admin: --url must not hold credentials/)
    // Nor a user name alone, which may be a token.
    const token = await command(['user', 'ann', '--url', 'https://ghp_s3cretT0ken@127.0.0.1:9'], { BELFRY_API_KEY: 'review-api-key-123' })
    expect([token.code, token.err]).toEqual([2, expect.stringMatching(/^belfry-server admin: --url must not hold credentials/)])
    expect(token.err).not.toContain('ghp_s3cretT0ken')
  })

  it('does not print the password of a --url it refuses as a usage mistake', async () => {
    // Regression: "--url must be an http:// or https:// URL, got …" showed the refused URL as given, password included.
    const { code, err: stderr } = await command(['user', 'ann', '--url', 'ftp://ops:hunter2-s3cret@127.0.0.1:9'], {
      BELFRY_API_KEY: 'review-api-key-123',
    })
    expect(code).toBe(2)
    expect(stderr).not.toContain('hunter2-s3cret')
  })

  it('reaches a user whose id starts with "-": a negative number as it is, any id after "--"', async () => {
    for (const userId of ['-1', '-x', '--help']) await httpPublish(server.url, { userId, title: 'hi', body: '' }, KEY)
    const env = { BELFRY_API_KEY: KEY, BELFRY_URL: server.url }
    for (const args of [
      ['user', '-1'],
      ['user', '--', '-1'],
      ['user', '--', '-x'],
      ['--url', server.url, 'user', '--', '--help'], // after '--', not the help
    ]) {
      const { code, out, err } = await command(args, env)
      expect([code, err], args.join(' ')).toEqual([0, ''])
      expect(JSON.parse(out), args.join(' ')).toMatchObject({ userId: args.at(-1), latestSeq: 1 })
    }
    // Any other '-' word before '--' is an option, and the message says what to do.
    const { code, err } = await command(['user', '-x'], env)
    expect([code, err]).toEqual([
      2,
      expect.stringMatching(/^belfry-server admin: unknown option -x \(an operand that starts with '-' goes after '--'\)/),
    ])
  })

  it('refuses a flag given twice, naming it, rather than taking the last (prune deletes by it)', async () => {
    const env = { BELFRY_API_KEY: KEY, BELFRY_URL: 'http://127.0.0.1:1' }
    for (const [args, flag] of [
      [['prune', '--days', '30', '--days', '0.001'], '--days'],
      [['prune', '--max-per-user=5', '--max-per-user', '1'], '--max-per-user'],
      [['user', 'bob', '--url', server.url, '--url=http://127.0.0.1:1'], '--url'],
    ] as const) {
      const { code, err } = await command([...args], env)
      expect([code, err], args.join(' ')).toEqual([2, `belfry-server admin: ${flag} is given twice (see belfry-server admin --help)\n`])
    }
  })

  it('names where a bad server URL came from: --url, BELFRY_URL or PORT', async () => {
    const key = { BELFRY_API_KEY: KEY }
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [
        ['user', 'ann'],
        { ...key, BELFRY_URL: 'localhost:3000' },
        /^BELFRY_URL must be an http:\/\/ or https:\/\/ URL, got "localhost:3000"/,
      ],
      [['user', 'ann'], { ...key, PORT: 'abc' }, /^PORT must be a port number from 1 to 65535 .*, got "abc"/],
      [['user', 'ann'], { ...key, PORT: '70000' }, /^PORT must be a port number/],
      [['user', 'ann', '--url', 'localhost:3000'], { ...key, BELFRY_URL: server.url }, /^--url must be an http:\/\/ or https:\/\/ URL/],
    ]
    for (const [args, env, message] of cases) {
      const { code, err } = await command(args, env)
      expect([code, err.replace(/^belfry-server admin: /, '')], JSON.stringify(env)).toEqual([2, expect.stringMatching(message)])
    }
  })

  it('does not print the password of a BELFRY_URL without a scheme', async () => {
    // 'ops:…@host' parses as a URL of scheme "ops:", refused; redact's '//user:password@' is not in it.
    const { code, err } = await command(['user', 'ann'], { BELFRY_API_KEY: KEY, BELFRY_URL: 'ops:hunter2-s3cret@127.0.0.1:9' })
    expect(code).toBe(2)
    expect(err).toMatch(/^belfry-server admin: BELFRY_URL must be an http:\/\/ or https:\/\/ URL, got "\(not shown: it holds user info\)"/)
  })

  it.each(['ws://ghp_s3cretT0ken@127.0.0.1:9', 'wss://ghp_s3cretT0ken@127.0.0.1:9', 'ghp_s3cretT0ken@127.0.0.1:9'])(
    'does not print the user info (a user name alone may be a token) of %s, refused as no http(s) URL',
    async (url) => {
      const { code, err } = await command(['user', 'ann', '--url', url], { BELFRY_API_KEY: KEY })
      expect(code).toBe(2)
      expect(err).toMatch(/must be an http:\/\/ or https:\/\/ URL/)
      expect(err).not.toContain('ghp_s3cretT0ken')
    },
  )
})

/** JSON as Python's `json.dumps(value)` writes it: ensure_ascii (every non-ASCII character as \uXXXX), ", " and ": ". */
function pythonJson(value: unknown): string {
  if (typeof value === 'string') {
    return `"${[...value].map((ch) => (ch.charCodeAt(0) < 0x80 ? JSON.stringify(ch).slice(1, -1) : `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)).join('')}"`
  }
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(', ')}]`
  if (typeof value === 'object' && value !== null) {
    return `{${Object.entries(value)
      .map(([k, v]) => `${pythonJson(k)}: ${pythonJson(v)}`)
      .join(', ')}}`
  }
  return JSON.stringify(value)
}

describe('admin API: unsubscribe bodies within its own rules', () => {
  const unsubscribe = (url: string, body: unknown) => admin(url, 'POST', 'unsubscribe', { body: JSON.stringify(body) })
  /** A topic of exactly `length` characters, distinct by `i`, the rest filled with `fill`. */
  const topic = (i: number, fill: string, length = 128) => `t${i}:`.padEnd(length, fill)

  // Regression: the body was capped at 64 KiB, under what its own rules take: 413 for these.
  it('ends every topic a user holds at the default limits (200 topics of 128 CJK characters) in one call', async () => {
    const t = await start()
    const topics = range(1, 200).map((i) => topic(i, '通')) // 3 bytes each in UTF-8: about 77 KB
    const ann = await authedClient(t, 'ann')
    for (let i = 0; i < topics.length; i += 50) {
      const requestId = `s${i}`
      ann.send({ type: 'subscribe', topics: topics.slice(i, i + 50), requestId })
      expect(await ann.next((f) => f.requestId === requestId)).toMatchObject({ type: 'subscribed', topics: topics.slice(i, i + 50) })
    }
    ann.close()
    const res = await unsubscribe(t.url, { userId: 'ann', topics })
    expect([res.status, await res.json()]).toEqual([200, { userId: 'ann', topics }])
    expect((await httpPublish(t.url, { topic: topics[0], title: 'after', body: '' })).json.recipients).toBe(0)
  })

  it('takes the 1000 topics of maxTopicLength its 400 message allows', async () => {
    const t = await start({ limits: { maxSubscriptionsPerUser: 1000 } })
    const topics = range(1, 1000).map((i) => topic(i, 'x'))
    const res = await unsubscribe(t.url, { userId: 'ann', topics })
    expect([res.status, await res.json()]).toEqual([200, { userId: 'ann', topics }])
  })

  // Regression: the first cap allowed no spacing between items (772,029 bytes against 772,024).
  it('takes 1000 topics of 128 CJK characters (the default maxTopicLength) written by Python’s json.dumps', async () => {
    const t = await start({ limits: { maxSubscriptionsPerUser: 1000 } })
    // Each all CJK, distinct by its first characters (i in base 16, from 一).
    const topics = range(1, 1000).map((i) =>
      [...i.toString(16)]
        .map((d) => String.fromCharCode(0x4e00 + Number.parseInt(d, 16)))
        .join('')
        .padEnd(128, '通'),
    )
    const body = pythonJson({ userId: 'ann', topics })
    expect(JSON.parse(body)).toEqual({ userId: 'ann', topics }) // the same request, valid JSON
    const res = await fetch(`${t.url}/api/admin/unsubscribe`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body,
    })
    const answer: unknown = await res.json()
    expect(res.status, `a body of ${Buffer.byteLength(body)} bytes: ${JSON.stringify(answer).slice(0, 120)}`).toBe(200)
    expect(answer).toEqual({ userId: 'ann', topics })
  })
})

describe('belfry-server admin: a URL that does not answer as the admin API', () => {
  /** An HTTP server on 127.0.0.1 that answers every request with `answer`; closed after the test. */
  async function other(answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
    const server = createServer((req, res) => {
      req.resume()
      answer(req, res)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }

  // Regression: a 200 that was not JSON (a front end's page, a proxy's sign-in) was printed as a string, exit 0.
  it.each([
    ['user', 'ann'],
    ['prune', '--days', '30'],
    ['unsubscribe', 'ann', 'team-a'],
  ])('admin %s … against a 200 HTML page fails: exit 1, one line on stderr, nothing printed', async (...args) => {
    const url = await other((_, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><p>Please sign in'))
    const { code, out, err } = await command(args, { BELFRY_API_KEY: API_KEY, BELFRY_URL: url })
    expect([code, out]).toEqual([1, ''])
    expect(err).toMatch(/^belfry-server admin: 200 .*not the admin API's answer \(text\/html\).*\n$/)
  })

  // Regression: the redirect was followed, which drops the key on another origin and makes a POST a GET: the right key
  // was told as refused (401), prune as the wrong method (405).
  it.each([
    [301, 'user ann'],
    [301, 'prune --max-per-user 5'],
    [308, 'user ann'],
  ] as const)('%i to admin %s: fails naming where it was sent, not as a refused key or method', async (status, line) => {
    const t = await start({ retention: { maxPerUser: 5 } })
    const url = await other((req, res) => res.writeHead(status, { location: `${t.url}${req.url}` }).end())
    const { code, out, err } = await command(line.split(' '), { BELFRY_API_KEY: API_KEY, BELFRY_URL: url })
    expect([code, out]).toEqual([1, ''])
    expect(err).toMatch(
      new RegExp(`^belfry-server admin: ${status}: the server redirected to ${t.url}/api/admin/.*--url or BELFRY_URL.*\\n$`),
    )
  })
  it('keeps the path of the URL: a server under a prefix is asked at <url>/api/admin/…, not at the host’s root', async () => {
    const paths: string[] = []
    const url = await other((req, res) => {
      paths.push(req.url ?? '')
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found","message":"not here"}')
    })
    await command(['user', 'ann'], { BELFRY_API_KEY: API_KEY, BELFRY_URL: `${url}/belfry` })
    await command(['user', 'bob'], { BELFRY_API_KEY: API_KEY, BELFRY_URL: `${url}/belfry/?x=1#y` })
    expect(paths).toEqual(['/belfry/api/admin/users?id=ann', '/belfry/api/admin/users?id=bob'])
  })

  it('a refusal whose message holds a newline and a terminal escape is still one line on stderr, its control characters written out', async () => {
    const url = await other((_, res) =>
      res
        .writeHead(502, { 'content-type': 'application/json' })
        .end(JSON.stringify({ message: 'upstream failed\n    at proxy.js:12\u001b[2J\u001b[31mFAKE: all good' })),
    )
    const { code, err } = await command(['user', 'ann'], { BELFRY_API_KEY: API_KEY, BELFRY_URL: url })
    expect(code).toBe(1)
    expect(err).toBe('belfry-server admin: 502 upstream failed\\u000a    at proxy.js:12\\u001b[2J\\u001b[31mFAKE: all good\n')
  })
})
