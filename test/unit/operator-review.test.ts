/** Review findings on what operators use: configuration errors. */
import { describe, expect, it } from 'vitest'
import { readConfig } from '../../src/server/config.js'

const env = { BELFRY_SECRET: 's'.repeat(16), BELFRY_API_KEY: 'k'.repeat(8) }

describe('BELFRY_DRAIN_MS past setTimeout’s limit', () => {
  it('says what the limit is, rather than "must be a whole number" for a whole number', () => {
    // 2^31 ms: a whole number, refused because setTimeout cannot wait that long (options.ts MAX_TIMER_MS).
    expect(() => readConfig({ ...env, BELFRY_DRAIN_MS: '2147483648' }, [])).toThrow(/2147483647/)
  })
})
