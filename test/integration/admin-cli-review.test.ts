/** The admin command's arguments and where a bad URL came from. */
import { describe, expect, it } from 'vitest'
import { admin } from '../../src/server/admin-cli.js'
import { API_KEY, httpPublish, useServer } from '../helpers/server.js'

const start = useServer()

/** `belfry-server admin <args>` in this process: its exit code and what it wrote. */
async function command(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; err: string }> {
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

describe('belfry-server admin', () => {
  it('can look up a user whose id starts with "-" (a valid user id), plainly or after "--"', async () => {
    const t = await start()
    await httpPublish(t.url, { userId: '-1', title: 'hi', body: '' })
    const env = { BELFRY_API_KEY: API_KEY, BELFRY_URL: t.url }
    const plain = await command(['user', '-1'], env)
    const dashed = await command(['user', '--', '-1'], env)
    // Both are refused as "unknown option": no way to reach this user from the admin command.
    expect({ plain: plain.err, dashed: dashed.err, codes: [plain.code, dashed.code] }).toMatchObject({ codes: expect.arrayContaining([0]) })
  })

  it('refuses a flag given twice rather than silently taking the last (prune deletes by it)', async () => {
    const env = { BELFRY_API_KEY: API_KEY, BELFRY_URL: 'http://127.0.0.1:1' }
    const { code, err } = await command(['prune', '--days', '30', '--days', '0.001'], env)
    // Today: no usage error; it goes on to POST {"days":0.001} (here to an unreachable server: exit 1).
    expect({ code, err }).toMatchObject({ code: 2, err: expect.stringContaining('--days') })
  })
})

describe('belfry-server admin: where a bad URL came from', () => {
  it('names BELFRY_URL (or PORT) when that is what is wrong, not --url, which was not given', async () => {
    const fromEnv = await command(['user', 'ann'], { BELFRY_API_KEY: API_KEY, BELFRY_URL: 'localhost:3000' })
    const fromPort = await command(['user', 'ann'], { BELFRY_API_KEY: API_KEY, PORT: 'abc' })
    // Today both say '--url must be an http:// or https:// URL, got "…"'.
    expect({ fromEnv: fromEnv.err, fromPort: fromPort.err }).toEqual({
      fromEnv: expect.stringContaining('BELFRY_URL'),
      fromPort: expect.stringContaining('PORT'),
    })
  })
})
