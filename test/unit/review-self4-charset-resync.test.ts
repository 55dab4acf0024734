import { expect, it } from 'vitest'
import { utf8 } from '../../src/server/http.js'

// utf8() scans with a global regex that skips ahead to the next ";" when a parameter fails to match: after a malformed
// one ("a b=", or an empty name) whose quoted value holds "; charset=utf-8", it resynchronises inside that quoted value,
// takes `utf-8"` for the charset (the value test accepts a lone quote) and never reaches the real charset=iso-8859-1.
it.each([
  'application/json; a b="x; charset=utf-8"; charset=iso-8859-1',
  'application/json; ="x; charset=utf-8"; charset=iso-8859-1',
])('does not take a charset= inside a quoted value for the charset: %s', (type) => {
  expect(utf8(type)).toBe(false)
})
