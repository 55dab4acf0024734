import { describe, expect, it } from 'vitest'
import { misread } from '../../src/server/http.js'

// misread() finds `charset` with /;\s*charset\s*=.../ anywhere in the header, also inside another parameter's quoted
// value: the declared charset is then taken from that value, not from the charset parameter (RFC 9110 §5.6.6).
describe('misread(): a charset= inside another parameter’s quoted value', () => {
  it('is no charset: a UTF-8 body (no charset parameter) is not refused', () => {
    expect(misread('application/json; profile="x; charset=iso-8859-1"', '{"title":"café"}')).toBe(false)
  })

  it('does not hide the real charset parameter: an ISO-8859-1 body past ASCII is refused', () => {
    expect(misread('application/json; profile="x; charset=utf-8"; charset=iso-8859-1', '{"title":"Ã©"}')).toBe(true)
  })
})
