import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { RedisBroker } from '../../src/server/broker/redis.js'
import { DEV_API_KEY, DEV_SECRET, devWarning, displayUrl, readArgs, readConfig, SERVER_USAGE, UsageError } from '../../src/server/config.js'
import { resolveOptions } from '../../src/server/options.js'
import { redact, redactUrl } from '../../src/server/redact.js'
import { PostgresStore } from '../../src/server/store/postgres.js'
import { STORE_OPERATIONS } from '../../src/server/store/store.js'

describe('passwords in messages', () => {
  it.each([
    ['postgres://belfry:hunter2@db:5432/belfry', 'postgres://belfry:***@db:5432/belfry'],
    ['postgres://belfry:hun/ter@2@db/belfry', 'postgres://belfry:***@db/belfry'],
    ['redis://:hunter2@cache:6379', 'redis://:***@cache:6379'],
    ['postgres://belfry@db/belfry?password=hunter2&sslmode=require', 'postgres://belfry@db/belfry?password=***&sslmode=require'],
    ['redis://cache:6379/0?password=hunter2', 'redis://cache:6379/0?password=***'],
    ['host=db user=belfry password=hunter2 dbname=belfry', 'host=db user=belfry password=*** dbname=belfry'],
    ["host=db PASSWORD = 'hun ter2' dbname=belfry", 'host=db PASSWORD = *** dbname=belfry'],
    ['postgres://db/belfry', 'postgres://db/belfry'],
    // Regression: only the first URL of a message was redacted (fetch's own error repeats the URL).
    ['cannot reach http://ops:a@h: bad URL http://ops:a@h/x', 'cannot reach http://ops:***@h: bad URL http://ops:***@h/x'],
    // An unencoded space, or "://", in the password.
    ['redis://:hun ter2@cache:6379', 'redis://:***@cache:6379'],
    ['cannot reach redis://:hun ter2@cache:1: refused', 'cannot reach redis://:***@cache:1: refused'],
    ['postgres://belfry:hun://ter2@db/belfry', 'postgres://belfry:***@db/belfry'],
  ])('redacts %s', (given, shown) => {
    expect(redact(given)).toBe(shown)
  })

  it.each([
    ['postgres://belfry:hun ter/2@db:5432/belfry', 'postgres://belfry:***@db:5432/belfry'],
    ['belfry:hunter2@db:5432/belfry', 'belfry:***@db:5432/belfry'], // the scheme forgotten
    ['postgres:/belfry:hunter2@db/belfry', 'postgres:***@db/belfry'], // one slash
    [':hunter2@cache:6379', ':***@cache:6379'],
    ['redis://cache:6379/0?password=hunter2', 'redis://cache:6379/0?password=***'],
    ['host=db password=hunter2', 'host=db password=***'],
    ['postgres://belfry@db/belfry', 'postgres://belfry@db/belfry'],
    ['localhost:6379', 'localhost:6379'],
  ])('redacts the one connection string %s, whatever its shape', (given, shown) => {
    expect(redactUrl(given)).toBe(shown)
  })

  it.each([
    ['BELFRY_DATABASE_URL', 'belfry:hunter2secret@db:5432/belfry'], // the scheme forgotten
    ['BELFRY_DATABASE_URL', 'postgres:/belfry:hunter2secret@db/belfry'], // one slash
    ['BELFRY_REDIS_URL', ':hunter2secret@cache:6379'], // the scheme forgotten
  ])('refuses %s=%s, a mistyped URL, without showing its password', (name, value) => {
    const env = { BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: 'k'.repeat(8) }
    let message = ''
    try {
      readConfig({ ...env, [name]: value }, [])
    } catch (error) {
      message = (error as Error).message
    }
    expect(message).toMatch(new RegExp(`^${name} must be`))
    expect(message).not.toContain('hunter2')
  })

  it('shows no password holding an unencoded space in RedisBroker’s start-up error', async () => {
    // readConfig takes this URL (it starts with redis://); ioredis takes it too and tries to connect.
    const message = await RedisBroker.connect('redis://:hunter2 secret@127.0.0.1:1', {
      connectTimeout: 1000,
      logger: pino({ level: 'silent' }),
    }).then(
      () => 'connected',
      (e: unknown) => (e as Error).message,
    )
    expect(message).toMatch(/^cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1: /)
    expect(message).not.toContain('hunter2')
  })

  it('shows none in the one-line start-up errors of readConfig, PostgresStore and RedisBroker', async () => {
    const failure = async (p: Promise<unknown>) =>
      (
        (await p.then(
          () => new Error('no failure'),
          (e: unknown) => e,
        )) as Error
      ).message
    const env = { BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: 'k'.repeat(8) }
    expect(() => readConfig({ ...env, BELFRY_DATABASE_URL: 'host=db password=hunter2secret' }, [])).toThrow(/^BELFRY_DATABASE_URL must/)
    expect(
      await failure(Promise.resolve().then(() => readConfig({ ...env, BELFRY_DATABASE_URL: 'host=db password=hunter2secret' }, []))),
    ).not.toContain('hunter2')
    for (const url of [
      'postgres://belfry@127.0.0.1:1/belfry?password=hunter2secret',
      'postgres://belfry:hunter2/secret@127.0.0.1:1/belfry',
    ]) {
      const message = await failure(PostgresStore.open(url, { connectTimeoutMs: 1000 }))
      expect(message).toMatch(/^cannot use PostgreSQL at /)
      expect(message).not.toContain('hunter2')
    }
    const message = await failure(RedisBroker.connect('redis://127.0.0.1:1/0?password=hunter2secret', { connectTimeout: 1000 }))
    expect(message).toMatch(/^cannot reach Redis at /)
    expect(message).not.toContain('hunter2')
  })
})

describe('readConfig', () => {
  it.each([
    ['PORT', ' '],
    ['PORT', '0x1F90'],
    ['PORT', '8e3'],
    ['BELFRY_DRAIN_MS', ' '],
    ['BELFRY_DRAIN_MS', '0x10'],
    ['BELFRY_RETENTION_MAX_PER_USER', '0x10'],
    ['BELFRY_RETENTION_DAYS', '0x1e'],
    ['BELFRY_RETENTION_DAYS', ' 7'],
    ['BELFRY_IDEMPOTENCY_KEY_TTL_MS', '0x10'],
  ])('refuses %s=%j: numbers are decimal digits (Number() read " " as 0 and "0x10" as 16)', (name, value) => {
    expect(() => readConfig({ BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: 'k'.repeat(8), [name]: value }, [])).toThrow(
      new RegExp(`^${name} must`),
    )
  })

  it('still reads decimal numbers, a fraction of a day included', () => {
    const env = { BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: 'k'.repeat(8) }
    expect(readConfig({ ...env, PORT: '8080', BELFRY_DRAIN_MS: '0', BELFRY_RETENTION_DAYS: '1.5' }, [])).toMatchObject({
      port: 8080,
      drainMs: 0,
      retention: { days: 1.5 },
    })
  })

  it('requires BELFRY_SECRET and BELFRY_API_KEY outside dev mode', () => {
    expect(() => readConfig({}, [])).toThrow(/BELFRY_SECRET and BELFRY_API_KEY must be set/)
    expect(() => readConfig({ BELFRY_SECRET: 's'.repeat(16) }, [])).toThrow(/BELFRY_API_KEY must be set/)
    // belfry-server would start, and every publish, admin command and scrape would get 401.
    expect(() => readConfig({ BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: 'correct horse battery staple' }, [])).toThrow(
      'BELFRY_API_KEY must be at least 8 characters, visible ASCII without spaces (a bearer token); got 28 characters, with spaces, controls or non-ASCII ones',
    )
  })

  it('reads the environment with the documented defaults', () => {
    expect(readConfig({ BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: 'k'.repeat(8) }, [])).toEqual({
      port: 3000,
      secret: 's'.repeat(16),
      apiKey: 'k'.repeat(8),
      database: './belfry.db',
      dev: false,
      ignored: [],
    })
    expect(
      readConfig(
        { PORT: '8080', HOST: '127.0.0.1', BELFRY_DB: '/tmp/x.db', BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: 'k'.repeat(8) },
        [],
      ),
    ).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      database: '/tmp/x.db',
    })
  })

  it('runs dev mode on the published dev secrets, never on secrets from the environment, on loopback', () => {
    expect(readConfig({}, ['--dev'])).toMatchObject({ secret: DEV_SECRET, apiKey: DEV_API_KEY, dev: true, host: '127.0.0.1' })
    const prod = { BELFRY_SECRET: 'real-production-secret', BELFRY_API_KEY: 'real-production-key' }
    const dev = readConfig(prod, ['--dev'])
    expect(dev).toMatchObject({ secret: DEV_SECRET, apiKey: DEV_API_KEY, ignored: ['BELFRY_SECRET', 'BELFRY_API_KEY'] })
    expect(devWarning(dev)).toMatch(/DEV MODE[\s\S]*BELFRY_SECRET and BELFRY_API_KEY from the environment ignored/)
    expect(readConfig({ HOST: '0.0.0.0' }, ['--dev'])).toMatchObject({ host: '0.0.0.0' })
    expect(devWarning(readConfig({ HOST: '0.0.0.0' }, ['--dev']))).toMatch(/not a loopback address/)
    expect(readConfig(prod, [])).not.toHaveProperty('host')
  })

  it('runs dev mode on a file of its own, and takes no store from an environment that holds a production secret', () => {
    expect(readConfig({}, ['--dev'])).toMatchObject({ database: './belfry-dev.db' })
    expect(readConfig({ BELFRY_DB: '/tmp/demo.db' }, ['--dev'])).toMatchObject({ database: '/tmp/demo.db' })
    expect(readConfig({ BELFRY_DATABASE_URL: 'postgres://localhost/demo' }, ['--dev'])).toMatchObject({
      databaseUrl: 'postgres://localhost/demo',
    })
    // A production environment: its secrets are ignored, its store refused, whichever names it.
    expect(readConfig({ BELFRY_SECRET: 'real-production-secret' }, ['--dev'])).toMatchObject({ database: './belfry-dev.db' })
    for (const store of [
      { BELFRY_DB: '/srv/belfry.db' },
      { BELFRY_DATABASE_URL: 'postgres://db/belfry' },
      { BELFRY_REDIS_URL: 'redis://cache' },
    ]) {
      for (const secret of [{ BELFRY_SECRET: 'real-production-secret' }, { BELFRY_API_KEY: 'real-production-key' }]) {
        const [name] = Object.keys(store)
        expect(() => readConfig({ ...secret, ...store }, ['--dev'])).toThrow(
          new RegExp(`^dev mode takes no store from an environment that holds ${Object.keys(secret)[0]}: ${name} may be production's`),
        )
        // Outside dev mode the same store is production's own.
        expect(() =>
          readConfig({ BELFRY_SECRET: 'real-production-secret', BELFRY_API_KEY: 'real-production-key', ...store }, []),
        ).not.toThrow()
      }
    }
    expect(() =>
      readConfig({ BELFRY_SECRET: 'real-production-secret', BELFRY_DB: '/srv/belfry.db', BELFRY_REDIS_URL: 'redis://cache' }, ['--dev']),
    ).toThrow(
      /BELFRY_DB, BELFRY_REDIS_URL may be production's, whose inboxes dev mode would hand to anyone\. Unset them \(dev mode then uses \.\/belfry-dev\.db\), or run without --dev$/,
    )
  })

  // Regression: only `--dev` was looked at, so `--help` started a production server and a typo (`--dve`) a non-dev one.
  it('reads `--dev` and `-h`/`--help`, and refuses any other argument, naming it', () => {
    const prod = { BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: 'k'.repeat(8) }
    for (const typo of ['--dve', 'dev', '--port=3000']) {
      expect(() => readConfig(prod, [typo])).toThrow(new UsageError(`unknown argument "${typo}"`))
    }
    expect(readArgs([])).toEqual({ dev: false, help: false })
    expect(readArgs(['--dev'])).toEqual({ dev: true, help: false })
    expect(readArgs(['--help'])).toEqual({ dev: false, help: true })
    expect(readArgs(['--dev', '-h'])).toEqual({ dev: true, help: true })
    expect(SERVER_USAGE).toMatch(/^Usage: belfry-server[\s\S]*--dev[\s\S]*admin[\s\S]*BELFRY_SECRET[\s\S]*BELFRY_RETENTION_DAYS/)
  })

  it('refuses the published dev secrets outside dev mode, so nothing dev mode mints is valid there', () => {
    expect(() => readConfig({ BELFRY_SECRET: DEV_SECRET, BELFRY_API_KEY: 'k'.repeat(8) }, [])).toThrow(/dev defaults/)
    expect(() => readConfig({ BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: DEV_API_KEY }, [])).toThrow(/dev defaults/)
  })

  it('refuses either published dev value as the API key outside dev mode: with BELFRY_METRICS=1 it guards /metrics too', () => {
    const env = { BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: DEV_SECRET }
    expect(() => readConfig(env, [])).toThrow(/dev defaults/)
    expect(() => readConfig({ ...env, BELFRY_METRICS: '1' }, [])).toThrow(/dev defaults/)
    const secret = 'the-real-production-secret-0123'
    for (const apiKey of [DEV_SECRET, DEV_API_KEY]) {
      expect(() => resolveOptions({ secret, apiKey })).toThrow(TypeError)
      expect(() => resolveOptions({ secret, apiKey, metrics: true })).toThrow(/must not be the published dev secrets/)
    }
  })

  it('reads BELFRY_TOPICS_CLAIM as the name of a token claim', () => {
    const base = { BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: 'k'.repeat(8) }
    expect(readConfig({ ...base, BELFRY_TOPICS_CLAIM: 'topics' }, [])).toMatchObject({ topicsClaim: 'topics' })
    expect(readConfig(base, [])).not.toHaveProperty('topicsClaim')
    expect(() => readConfig({ ...base, BELFRY_TOPICS_CLAIM: 'no spaces' }, [])).toThrow(/BELFRY_TOPICS_CLAIM/)
  })

  it('takes PostgreSQL and Redis URLs, and refuses a SQLite file beside a PostgreSQL URL', () => {
    const base = { BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: 'k'.repeat(8) }
    const pg = 'postgres://belfry:pw@db.internal:5432/belfry'
    expect(readConfig({ ...base, BELFRY_DATABASE_URL: pg, BELFRY_REDIS_URL: 'redis://cache:6379' }, [])).toMatchObject({
      databaseUrl: pg,
      redisUrl: 'redis://cache:6379',
    })
    expect(() => readConfig({ ...base, BELFRY_DATABASE_URL: pg, BELFRY_DB: './x.db' }, [])).toThrow(
      /BELFRY_DB .* and BELFRY_DATABASE_URL .* both set/,
    )
    expect(() => readConfig({ ...base, BELFRY_DATABASE_URL: 'mysql://u:secret@h/db' }, [])).toThrow(
      /postgres:\/\/ or postgresql:\/\/ URL, got "mysql:\/\/u:\*\*\*@h\/db"/,
    )
    expect(() => readConfig({ ...base, BELFRY_REDIS_URL: 'cache:6379' }, [])).toThrow(
      /BELFRY_REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/,
    )
  })

  it('reads BELFRY_REDIS_CHANNEL, a channel per deployment: visible ASCII, and only beside BELFRY_REDIS_URL', () => {
    const base = { BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: 'k'.repeat(8), BELFRY_REDIS_URL: 'redis://cache:6379/1' }
    expect(readConfig(base, [])).not.toHaveProperty('redisChannel')
    expect(readConfig({ ...base, BELFRY_REDIS_CHANNEL: 'belfry:staging' }, [])).toMatchObject({ redisChannel: 'belfry:staging' })
    for (const bad of ['', 'belfry staging', 'x'.repeat(129), 'belfry:é']) {
      expect(() => readConfig({ ...base, BELFRY_REDIS_CHANNEL: bad }, []), bad).toThrow(
        `BELFRY_REDIS_CHANNEL must be 1–128 visible ASCII characters (no spaces), e.g. belfry:staging, got "${bad.slice(0, 64)}"`,
      )
    }
    const { BELFRY_REDIS_URL: _, ...withoutUrl } = base
    expect(() => readConfig({ ...withoutUrl, BELFRY_REDIS_CHANNEL: 'belfry:staging' }, [])).toThrow(/without BELFRY_REDIS_URL/)
  })

  it('reads BELFRY_METRICS and BELFRY_METRICS_TOKEN: /metrics off unless asked for, behind its token or the API key', () => {
    const base = { BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: 'k'.repeat(8) }
    expect(readConfig(base, [])).not.toHaveProperty('metrics')
    for (const off of ['0', 'false']) expect(readConfig({ ...base, BELFRY_METRICS: off }, [])).not.toHaveProperty('metrics')
    for (const on of ['1', 'true']) expect(readConfig({ ...base, BELFRY_METRICS: on }, [])).toMatchObject({ metrics: true })
    expect(readConfig({ ...base, BELFRY_METRICS: '1', BELFRY_METRICS_TOKEN: 'm'.repeat(8) }, [])).toMatchObject({
      metrics: { token: 'm'.repeat(8) },
    })
    expect(readConfig({ BELFRY_METRICS: '1' }, ['--dev'])).toMatchObject({ metrics: true, apiKey: DEV_API_KEY })
    // Switched off, a token stays unused; without BELFRY_METRICS at all it is a mistake.
    expect(readConfig({ ...base, BELFRY_METRICS: '0', BELFRY_METRICS_TOKEN: 'm'.repeat(8) }, [])).not.toHaveProperty('metrics')
    expect(() => readConfig({ ...base, BELFRY_METRICS_TOKEN: 'm'.repeat(8) }, [])).toThrow(
      /BELFRY_METRICS_TOKEN is set but BELFRY_METRICS is not/,
    )
    expect(() => readConfig({ ...base, BELFRY_METRICS: 'yes' }, [])).toThrow('BELFRY_METRICS must be 1 (on) or 0 (off), got "yes"')
    expect(() => readConfig({ ...base, BELFRY_METRICS: '1', BELFRY_METRICS_TOKEN: 'short' }, [])).toThrow(
      'BELFRY_METRICS_TOKEN must be at least 8 characters, visible ASCII without spaces (unset, /metrics takes BELFRY_API_KEY); got 5 characters',
    )
    expect(() => readConfig({ ...base, BELFRY_METRICS: '1', BELFRY_METRICS_TOKEN: 'scrape me please' }, [])).toThrow(
      /BELFRY_METRICS_TOKEN must be .* without spaces .*; got 16 characters, with spaces/,
    )
  })

  it('reads BELFRY_RETENTION_DAYS and BELFRY_RETENTION_MAX_PER_USER, and refuses values that are not', () => {
    const base = { BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: 'k'.repeat(8) }
    expect(readConfig(base, [])).not.toHaveProperty('retention')
    expect(readConfig({ ...base, BELFRY_RETENTION_DAYS: '', BELFRY_RETENTION_MAX_PER_USER: '' }, [])).not.toHaveProperty('retention')
    expect(readConfig({ ...base, BELFRY_RETENTION_DAYS: '30' }, [])).toMatchObject({ retention: { days: 30 } })
    expect(readConfig({ ...base, BELFRY_RETENTION_DAYS: '0.5', BELFRY_RETENTION_MAX_PER_USER: '1000' }, [])).toMatchObject({
      retention: { days: 0.5, maxPerUser: 1000 },
    })
    for (const days of ['0', '-1', 'abc', '1e9', 'Infinity']) {
      expect(() => readConfig({ ...base, BELFRY_RETENTION_DAYS: days }, []), days).toThrow(
        `BELFRY_RETENTION_DAYS must be a number of days > 0 and ≤ 36500, got "${days}"`,
      )
    }
    for (const max of ['0', '1.5', 'ten', '-3']) {
      expect(() => readConfig({ ...base, BELFRY_RETENTION_MAX_PER_USER: max }, []), max).toThrow(
        /BELFRY_RETENTION_MAX_PER_USER must be a whole number from 1 to 9007199254740991/,
      )
    }
    // A whole number past the bound is told the bound, not that it is not a whole number ≥ 1.
    expect(() => readConfig({ ...base, BELFRY_RETENTION_MAX_PER_USER: '9007199254740992' }, [])).toThrow(/from 1 to 9007199254740991/)
  })

  it('reads BELFRY_DRAIN_MS as whole milliseconds, 0 included; empty is unset', () => {
    const base = { BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: 'k'.repeat(8) }
    expect(readConfig({ ...base, BELFRY_DRAIN_MS: '3000' }, [])).toMatchObject({ drainMs: 3000 })
    expect(readConfig({ ...base, BELFRY_DRAIN_MS: '0' }, [])).toMatchObject({ drainMs: 0 })
    expect(readConfig({ ...base, BELFRY_DRAIN_MS: '' }, [])).not.toHaveProperty('drainMs')
    for (const bad of ['-1', '2.5', '5s', '1e12']) {
      expect(() => readConfig({ ...base, BELFRY_DRAIN_MS: bad }, [])).toThrow(
        /BELFRY_DRAIN_MS must be a whole number of milliseconds from 0 to 2147483647/,
      )
    }
    expect(readConfig({ ...base, BELFRY_DRAIN_MS: '2147483647' }, [])).toMatchObject({ drainMs: 2147483647 })
  })

  it('says BELFRY_DRAIN_MS’s bound, 2147483647 (setTimeout’s), for a whole number past it', () => {
    const base = { BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: 'k'.repeat(8) }
    expect(() => readConfig({ ...base, BELFRY_DRAIN_MS: '2147483648' }, [])).toThrow(/2147483647/)
  })

  it('reads BELFRY_IDEMPOTENCY_KEY_TTL_MS as whole milliseconds from 1 to a year; empty is unset', () => {
    const base = { BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: 'k'.repeat(8) }
    expect(readConfig({ ...base, BELFRY_IDEMPOTENCY_KEY_TTL_MS: '3600000' }, [])).toMatchObject({ idempotencyKeyTtlMs: 3_600_000 })
    expect(readConfig({ ...base, BELFRY_IDEMPOTENCY_KEY_TTL_MS: '' }, [])).not.toHaveProperty('idempotencyKeyTtlMs')
    for (const bad of ['0', '-1', '2.5', '24h']) {
      expect(() => readConfig({ ...base, BELFRY_IDEMPOTENCY_KEY_TTL_MS: bad }, [])).toThrow(
        /BELFRY_IDEMPOTENCY_KEY_TTL_MS must be a whole number of milliseconds from 1 to 31536000000 \(a year\)/,
      )
    }
    for (const past of [String(366 * 86_400_000), '99999999999999999999']) {
      expect(() => readConfig({ ...base, BELFRY_IDEMPOTENCY_KEY_TTL_MS: past }, [])).toThrow(/from 1 to 31536000000/)
    }
  })

  it('refuses an empty BELFRY_DB instead of taking it for ./belfry.db', () => {
    expect(() => readConfig({ BELFRY_DB: '' }, ['--dev'])).toThrow(
      /BELFRY_DB is empty: set it to a file path, or unset it for \.\/belfry-dev\.db$/,
    )
    expect(() => readConfig({ BELFRY_DB: '' }, [])).toThrow(/BELFRY_DB is empty: set it to a file path, or unset it for \.\/belfry\.db$/)
  })

  it('takes an empty PORT as unset, not as "any free port"', () => {
    expect(readConfig({ PORT: '' }, ['--dev'])).toMatchObject({ port: 3000 })
  })

  it('refuses a bad port or a short secret', () => {
    expect(() => readConfig({ PORT: 'abc' }, ['--dev'])).toThrow(/PORT/)
    expect(() => readConfig({ PORT: '65536' }, ['--dev'])).toThrow(
      'PORT must be a port number from 0 to 65535 (0: any free port), got "65536"',
    )
    expect(() => readConfig({ BELFRY_SECRET: 'short', BELFRY_API_KEY: 'k'.repeat(8) }, [])).toThrow(/BELFRY_SECRET must be at least 16/)
  })
})

describe('resolveOptions', () => {
  it('throws a TypeError naming the bad option', () => {
    // What was given is shown, a secret only by its length.
    expect(() => resolveOptions({ secret: 'short' })).toThrow(
      new TypeError('options.secret must be a string of at least 16 characters; got a string of 5 characters'),
    )
    expect(() => resolveOptions(null as never)).toThrow(new TypeError('options must be an object; got null'))
    const secret = 's'.repeat(16)
    expect(() => resolveOptions({ secret, apiKey: 'k' })).toThrow(
      new TypeError(
        'options.apiKey must be a string of at least 8 characters, visible ASCII without spaces (a bearer token); got a string of 1 characters',
      ),
    )
    // A passphrase could never be sent as `Authorization: Bearer <key>`: every request would get 401.
    expect(() => resolveOptions({ secret, apiKey: 'correct horse battery staple' })).toThrow(
      new TypeError(
        'options.apiKey must be a string of at least 8 characters, visible ASCII without spaces (a bearer token); got a string of 28 characters, with spaces, controls or non-ASCII ones',
      ),
    )
    expect(() => resolveOptions({ secret, apiKey: 'clé-secrète-longue' })).toThrow(/got a string of 18 characters, with spaces/)
    expect(() => resolveOptions({ secret, limits: { heartbeatMs: -1 } })).toThrow(
      new TypeError('options.limits.heartbeatMs must be a positive integer; got -1'),
    )
    expect(() => resolveOptions({ secret, limits: { nope: 1 } as never })).toThrow(/options\.limits\.nope/)
    expect(() => resolveOptions({ secret, allowedOrigins: 'x' as never })).toThrow(
      new TypeError('options.allowedOrigins must be an array of origin strings; got "x"'),
    )
    expect(() => resolveOptions({ secret, allowedOrigins: ['a', 3] as never })).toThrow(/; got an array with 3$/)
    // Compared with the Origin header as they are: one that is no origin as a browser sends it would refuse every page of its origin.
    for (const [entry, meant] of [
      ['https://app.example/', 'https://app.example'],
      ['https://app.example/inbox', 'https://app.example'],
      ['HTTPS://APP.EXAMPLE', 'https://app.example'],
      ['https://app.example:443', 'https://app.example'],
    ]) {
      expect(() => resolveOptions({ secret, allowedOrigins: ['https://ok.example', entry!] })).toThrow(
        new TypeError(
          `options.allowedOrigins must hold origins as browsers send them (scheme://host[:port], lower case, no path); got "${entry}": did you mean "${meant}"?`,
        ),
      )
    }
    expect(() => resolveOptions({ secret, allowedOrigins: ['app.example'] })).toThrow(/no path\); got "app\.example"$/)
    expect(resolveOptions({ secret, allowedOrigins: ['https://app.example', 'http://localhost:5173'] }).allowedOrigins).toEqual(
      new Set(['https://app.example', 'http://localhost:5173']),
    )
    // A scheme the URL standard does not know has no serialized origin: its pages send scheme://host as it is.
    const others = [
      'chrome-extension://abcdefghijklmnop',
      'moz-extension://0f2a5c1e-1234-4abc',
      'tauri://localhost',
      'capacitor://localhost',
    ]
    expect(resolveOptions({ secret, allowedOrigins: others }).allowedOrigins).toEqual(new Set(others))
    expect(() => resolveOptions({ secret, allowedOrigins: ['tauri://localhost/index.html'] })).toThrow(
      /got "tauri:\/\/localhost\/index\.html"$/,
    )
    expect(() => resolveOptions({ secret, dev: 'yes' as never })).toThrow(new TypeError('options.dev must be a boolean; got "yes"'))
    expect(() => resolveOptions({ secret, database: '' })).toThrow(new TypeError('options.database must be a file path; got ""'))
    expect(() => resolveOptions({ secret, fallback: {} as never })).toThrow(/function \(req, res\); got an object$/)
    // A store is checked for every method the server calls, fan-out and reconcile included.
    const method = () => Promise.resolve()
    const store = Object.fromEntries([...STORE_OPERATIONS, 'close'].map((name) => [name, method]))
    expect(() => resolveOptions({ secret, store: store as never })).not.toThrow()
    const { fanOut: _f, latestSeqs: _l, ...partial } = store
    expect(() => resolveOptions({ secret, store: partial as never })).toThrow(
      /options\.store must be an object with .* methods; got one without fanOut, latestSeqs$/,
    )
    expect(() => resolveOptions({ secret, logger: 'info' as never })).toThrow(
      new TypeError('options.logger must be an object with debug, info, warn, error methods; got "info"'),
    )
    expect(() => resolveOptions({ secret, drainMs: '5000' as never })).toThrow(/; got "5000"$/)
    for (const drainMs of [-1, 1.5, Number.NaN, 2 ** 31, '5000' as never]) {
      expect(() => resolveOptions({ secret: 's'.repeat(16), drainMs })).toThrow(TypeError)
      expect(() => resolveOptions({ secret: 's'.repeat(16), drainMs })).toThrow(/options\.drainMs must be a whole number/)
    }
    expect(resolveOptions({ secret: 's'.repeat(16) }).idempotencyKeyTtlMs).toBe(86_400_000)
    for (const idempotencyKeyTtlMs of [0, 1.5, Number.NaN, 366 * 86_400_000, '1000' as never]) {
      expect(() => resolveOptions({ secret: 's'.repeat(16), idempotencyKeyTtlMs })).toThrow(TypeError)
      expect(() => resolveOptions({ secret: 's'.repeat(16), idempotencyKeyTtlMs })).toThrow(
        /options\.idempotencyKeyTtlMs must be a whole number of ms from 1 to 31536000000/,
      )
    }
  })

  it('takes metrics as true (behind the API key), false, or { token }, and says what it got otherwise', () => {
    const base = { secret: 's'.repeat(16), apiKey: 'k'.repeat(8) }
    expect(resolveOptions(base).metrics).toBeUndefined()
    expect(resolveOptions({ ...base, metrics: false }).metrics).toBeUndefined()
    expect(resolveOptions({ ...base, metrics: true }).metrics).toEqual({ token: 'k'.repeat(8) })
    expect(resolveOptions({ ...base, metrics: { token: 'm'.repeat(8) } }).metrics).toEqual({ token: 'm'.repeat(8) })
    const expected =
      'options.metrics must be true, false or { token } with a token of at least 8 characters, visible ASCII without spaces; got'
    expect(() => resolveOptions({ ...base, metrics: 'yes' as never })).toThrow(new TypeError(`${expected} a string`))
    expect(() => resolveOptions({ ...base, metrics: 1 as never })).toThrow(new TypeError(`${expected} 1`))
    expect(() => resolveOptions({ ...base, metrics: null as never })).toThrow(new TypeError(`${expected} null`))
    expect(() => resolveOptions({ ...base, metrics: {} as never })).toThrow(new TypeError(`${expected} { token: undefined }`))
    // The token is a secret: its length is shown, never the token.
    expect(() => resolveOptions({ ...base, metrics: { token: 'secret1' } })).toThrow(new TypeError(`${expected} a token of 7 characters`))
    expect(() => resolveOptions({ ...base, metrics: { token: 'scrape me please' } })).toThrow(
      new TypeError(`${expected} a token of 16 characters, with spaces, controls or non-ASCII ones`),
    )
    expect(() => resolveOptions({ secret: 's'.repeat(16), metrics: true })).toThrow(
      new TypeError(
        'options.metrics is true (/metrics behind the API key) but options.apiKey is not given: give one, or metrics: { token }',
      ),
    )
  })

  it('refuses a published dev secret as BELFRY_METRICS_TOKEN outside dev mode, naming the variable', () => {
    const env = { BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: 'k'.repeat(8), BELFRY_METRICS: '1' }
    for (const token of [DEV_API_KEY, DEV_SECRET]) {
      expect(() => readConfig({ ...env, BELFRY_METRICS_TOKEN: token }, [])).toThrow(
        'BELFRY_METRICS_TOKEN must not be a published dev default outside dev mode',
      )
    }
  })

  it('refuses a published dev secret as the metrics token outside dev mode, as it does for the secret and the API key', () => {
    const base = { secret: 's'.repeat(16), apiKey: 'k'.repeat(8) }
    for (const token of [DEV_API_KEY, DEV_SECRET]) {
      expect(() => resolveOptions({ ...base, metrics: { token } })).toThrow(
        new TypeError('options.metrics.token must not be a published dev secret unless options.dev is true'),
      )
    }
    expect(resolveOptions({ dev: true, secret: DEV_SECRET, apiKey: DEV_API_KEY, metrics: { token: DEV_API_KEY } }).metrics).toEqual({
      token: DEV_API_KEY,
    })
  })

  it('checks retention: days > 0, maxPerUser a whole number ≥ 1, nothing else', () => {
    const secret = 's'.repeat(16)
    expect(resolveOptions({ secret }).retention).toBeUndefined()
    expect(resolveOptions({ secret, retention: {} }).retention).toBeUndefined()
    expect(resolveOptions({ secret, retention: { days: 7, maxPerUser: undefined } }).retention).toEqual({ days: 7 })
    expect(resolveOptions({ secret, retention: { days: 0.25, maxPerUser: 500 } }).retention).toEqual({ days: 0.25, maxPerUser: 500 })
    const bad: [unknown, string][] = [
      [7, 'options.retention must be an object { days?, maxPerUser? }, got 7'],
      [null, 'options.retention must be an object { days?, maxPerUser? }, got null'],
      [{ days: 0 }, 'options.retention.days must be a number of days > 0 and ≤ 36500, got 0'],
      [{ days: '30' }, 'options.retention.days must be a number of days > 0 and ≤ 36500, got "30"'],
      [{ days: Number.NaN }, 'options.retention.days must be a number of days > 0 and ≤ 36500, got NaN'],
      [{ days: 36_501 }, 'options.retention.days must be a number of days > 0 and ≤ 36500, got 36501'],
      [{ maxPerUser: 0 }, 'options.retention.maxPerUser must be a whole number ≥ 1, got 0'],
      [{ maxPerUser: 2.5 }, 'options.retention.maxPerUser must be a whole number ≥ 1, got 2.5'],
      [{ maxAge: 3 }, 'options.retention.maxAge is not a retention setting (days, maxPerUser)'],
    ]
    for (const [retention, message] of bad) {
      expect(() => resolveOptions({ secret, retention: retention as never }), message).toThrow(new TypeError(message))
    }
  })

  it('applies the documented defaults', () => {
    const o = resolveOptions({ secret: 's'.repeat(16) })
    expect(o.limits).toMatchObject({ maxFrameBytes: 65536, authTimeoutMs: 10_000, heartbeatMs: 25_000, maxBufferedBytes: 1048576 })
    expect(o.database).toBe('./belfry.db')
    expect(o.dev).toBe(false)
    expect(o.drainMs).toBe(5000)
    expect(resolveOptions({ secret: 's'.repeat(16), drainMs: 0 }).drainMs).toBe(0)
  })
})

describe('displayUrl', () => {
  it('prints localhost for all interfaces, and an IPv6 address in brackets', () => {
    expect(displayUrl(undefined, 3000)).toBe('http://localhost:3000')
    expect(displayUrl('0.0.0.0', 3000)).toBe('http://localhost:3000')
    expect(displayUrl('::', 3000)).toBe('http://localhost:3000')
    expect(displayUrl('127.0.0.1', 8080)).toBe('http://127.0.0.1:8080')
    expect(displayUrl('::1', 8080)).toBe('http://[::1]:8080')
    expect(new URL(displayUrl('::1', 8080)).port).toBe('8080')
  })
})
