/**
 * Review: `belfry-server admin` sends BELFRY_API_KEY as it is. A key no server can have (one with a
 * character past Latin-1, or a control character; a server's key is visible ASCII) makes fetch throw
 * before anything is sent, and the command says "cannot reach <url>: Cannot convert argument to a
 * ByteString…" or "…: invalid authorization header": a running, reachable server is reported as
 * unreachable, and the variable at fault is not named.
 */
import { describe, expect, it } from 'vitest'
import { admin } from '../../src/server/admin-cli.js'
import { useServer } from '../helpers/server.js'

const start = useServer()

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

describe('belfry-server admin: a BELFRY_API_KEY that cannot be a key', () => {
  it('is named in one line, not reported as a server it cannot reach', async () => {
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
})
