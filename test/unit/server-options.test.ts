import { describe, expect, it } from 'vitest'
import { NotificationServer } from '../../src/server/index.js'
import { resolveOptions } from '../../src/server/options.js'

describe('NotificationServer options', () => {
  it('refuses a key that is no option (a typo would be ignored) with a TypeError that names it and the options', () => {
    const secret = 's'.repeat(16)
    const typo = { secret, allowedOrigin: ['https://app.example'] } as never
    expect(() => resolveOptions(typo)).toThrow(
      new TypeError(
        'options.allowedOrigin is not an option of NotificationServer (secret, apiKey, database, store, broker, server, allowedOrigins, dev, logger, limits, authorizeSubscribe, metrics, drainMs, fallback, retention, idempotencyKeyTtlMs)',
      ),
    )
    expect(() => new NotificationServer(typo)).toThrow(/options\.allowedOrigin is not an option/)
    // Every documented one is taken (given as undefined: not given).
    expect(() =>
      resolveOptions({
        secret,
        apiKey: undefined,
        database: undefined,
        store: undefined,
        broker: undefined,
        server: undefined,
        allowedOrigins: undefined,
        dev: undefined,
        logger: undefined,
        limits: undefined,
        authorizeSubscribe: undefined,
        metrics: undefined,
        drainMs: undefined,
        fallback: undefined,
        retention: undefined,
        idempotencyKeyTtlMs: undefined,
      }),
    ).not.toThrow()
  })
})
