import { describe, expect, it } from 'vitest'
import { parsePublishBody, underflowProblem } from '../../src/server/publish-input.js'

// The pre-filter looks for an exponent of three digits below zero or a fraction of 300 zeros; a number whose
// smallness is split between its fraction's zeros and a two-digit exponent has neither, yet underflows.
describe('underflowProblem', () => {
  it.each([`0.${'0'.repeat(299)}1e-30`, `0.${'0'.repeat(250)}1e-99`, `-0.${'0'.repeat(280)}5E-60`])(
    'finds %s, which JSON.parse reads as 0',
    (n) => {
      const text = `{"userId": "alice", "title": "x", "body": "", "data": {"n": ${n}}}`
      expect(parsePublishBody(JSON.parse(text), 128).ok).toBe(true)
      expect(JSON.parse(text).data.n === 0).toBe(true) // read as 0: its value is gone
      expect(underflowProblem(text)).toEqual(expect.stringMatching(/too small/))
    },
  )
})
