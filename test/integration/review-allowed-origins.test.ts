/**
 * Review: `allowedOrigins` takes any strings, and compares them with the `Origin` header as they are. An
 * entry that can never equal an Origin — the page's URL with its trailing slash (`https://app.example/`,
 * copied from the address bar), a path, no scheme, upper case (browsers send the serialized origin:
 * lower-case scheme and host, no path) — is accepted without a word, and then every page of that origin
 * is refused with 4003: belfry's client takes 4003 as final (`closed`, AuthError). The standard: a bad
 * option is a TypeError that names it, and a nonsense value is not silently accepted.
 */
import { describe, expect, it } from 'vitest'
import { rawClient, useServer } from '../helpers/server.js'

const start = useServer()

describe('allowedOrigins with an entry that is no origin', () => {
  it('is refused with a TypeError naming it, or taken for the origin it names (the page gets in)', async () => {
    for (const entry of ['https://app.example/', 'https://app.example/inbox', 'HTTPS://APP.EXAMPLE']) {
      const started = await start({ allowedOrigins: [entry] }).catch((e: unknown) => e)
      if (started instanceof Error) {
        expect(started, entry).toBeInstanceOf(TypeError)
        expect(started.message).toMatch(/allowedOrigins/)
        continue
      }
      const s = started as Awaited<ReturnType<typeof start>>
      const c = await rawClient(s.wsUrl, { origin: 'https://app.example' })
      c.send({ type: 'auth', token: await s.token('alice'), userId: 'alice', since: 0 })
      const outcome = await Promise.race([
        c.closed.then((close) => `closed ${close.code}`),
        c.next((f) => f.type === 'auth_success').then(() => 'online'),
      ])
      expect(outcome, `allowedOrigins: ["${entry}"], Origin: https://app.example`).toBe('online')
    }
  })
})
