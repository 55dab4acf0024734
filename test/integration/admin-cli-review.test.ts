/** The admin command's arguments and where a bad URL came from. */
import { describe, expect, it } from 'vitest'
import { admin } from '../../src/server/admin-cli.js'
import { API_KEY } from '../helpers/server.js'

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
