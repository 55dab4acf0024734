import { describe, expect, it } from 'vitest'
import { DEV_SECRET, readConfig } from '../../src/server/config.js'
import { resolveOptions } from '../../src/server/options.js'

/**
 * Outside dev mode a published dev value must not guard anything: the metrics token is refused when it is
 * DEV_SECRET or DEV_API_KEY ("anyone could scrape /metrics with it"), and the README says a production server
 * refuses the published dev values. The API key guards publishing and the admin API, and with `metrics: true`
 * (BELFRY_METRICS=1 without a token) it is the metrics token too: as the published dev secret it must be refused.
 */
describe('the published dev secret as the API key outside dev mode', () => {
  it('resolveOptions refuses apiKey: DEV_SECRET (with metrics: true it would guard /metrics too)', () => {
    const secret = 'the-real-production-secret-0123'
    expect(() => resolveOptions({ secret, apiKey: DEV_SECRET })).toThrow(TypeError)
    expect(() => resolveOptions({ secret, apiKey: DEV_SECRET, metrics: true })).toThrow(TypeError)
  })

  it('belfry-server refuses BELFRY_API_KEY set to the published dev secret', () => {
    const env = { BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: DEV_SECRET }
    expect(() => readConfig(env, [])).toThrow(/dev/)
    expect(() => readConfig({ ...env, BELFRY_METRICS: '1' }, [])).toThrow(/dev/)
  })
})
