/** Review findings on what operators use: configuration errors. */
import { describe, expect, it } from 'vitest'
import { readConfig } from '../../src/server/config.js'

const env = { BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: 'k'.repeat(8) }

describe('passwords in the start-up errors of a mistyped URL', () => {
  it.each([
    ['BELFRY_DATABASE_URL', 'belfry:hunter2secret@db:5432/belfry'], // the scheme forgotten
    ['BELFRY_DATABASE_URL', 'postgres:/belfry:hunter2secret@db/belfry'], // one slash
    ['BELFRY_REDIS_URL', ':hunter2secret@cache:6379'], // the scheme forgotten
  ])('%s=%s is refused without showing its password', (name, value) => {
    let message = ''
    try {
      readConfig({ ...env, [name]: value }, [])
    } catch (error) {
      message = (error as Error).message
    }
    expect(message).toMatch(new RegExp(`^${name} must be`))
    expect(message).not.toContain('hunter2')
  })
})

describe('passwords with a space in the start-up errors', () => {
  it('RedisBroker.connect does not show a password holding an unencoded space (redact stops at whitespace)', async () => {
    const { RedisBroker } = await import('../../src/server/broker/redis.js')
    const { pino } = await import('pino')
    // readConfig takes this URL (it starts with redis://); ioredis takes it too and tries to connect.
    const message = await RedisBroker.connect('redis://:hunter2 secret@127.0.0.1:1', {
      connectTimeout: 1000,
      logger: pino({ level: 'silent' }),
    }).then(
      () => 'connected',
      (e: unknown) => (e as Error).message,
    )
    expect(message).toMatch(/^cannot reach Redis at /)
    expect(message).not.toContain('hunter2')
  })
})

describe('BELFRY_DRAIN_MS past setTimeout’s limit', () => {
  it('says what the limit is, rather than "must be a whole number" for a whole number', () => {
    // 2^31 ms: a whole number, refused because setTimeout cannot wait that long (options.ts MAX_TIMER_MS).
    expect(() => readConfig({ ...env, BELFRY_DRAIN_MS: '2147483648' }, [])).toThrow(/2147483647/)
  })
})
