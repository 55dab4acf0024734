import { describe, expect, it } from 'vitest'
import { topicsClaim } from '../../src/server/topics.js'

describe('topicsClaim', () => {
  const allow = topicsClaim()
  const claims = { topics: ['deploys', 'tenant:acme:*', 42] }

  it('allows exact names and prefix:* patterns from the claim, nothing else', () => {
    expect(allow('ann', 'deploys', claims)).toBe(true)
    expect(allow('ann', 'tenant:acme:billing', claims)).toBe(true)
    expect(allow('ann', 'tenant:acme:', claims)).toBe(true)
    expect(allow('ann', 'tenant:acme', claims)).toBe(false)
    expect(allow('ann', 'tenant:acmecorp:billing', claims)).toBe(false)
    expect(allow('ann', 'deploys-prod', claims)).toBe(false)
    expect(allow('ann', '42', claims)).toBe(false)
  })

  it('allows nothing without the claim, or with a claim that is not a list', () => {
    expect(allow('ann', 'deploys', {})).toBe(false)
    expect(allow('ann', 'deploys', { topics: 'deploys' })).toBe(false)
  })

  it('reads the claim it is given', () => {
    expect(topicsClaim('grants')('ann', 'x', { grants: ['x'], topics: [] })).toBe(true)
  })

  it('refuses a claim name that is no non-empty string with a TypeError that says what it got', () => {
    // `null` read the claim "null", an object "[object Object]": no token has it, and every subscription was refused.
    for (const [claim, got] of [
      [null, 'null'],
      [{ claim: 'grants' }, 'an object'],
      ['', '""'],
    ] as const) {
      expect(() => topicsClaim(claim as never)).toThrow(
        new TypeError(`topicsClaim: claim must be a claim's name, a non-empty string; got ${got}`),
      )
    }
  })
})
