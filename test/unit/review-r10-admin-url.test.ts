/**
 * Review (r10): belfry-server admin refuses a --url with user info without showing it (ea8b5dd: a user
 * name alone, https://TOKEN@host, may be a token), but only once the URL parses as http(s). The check
 * before it (not http(s), or no URL at all) prints the URL through redactUrl, which hides a password
 * (after a `:`) but not a user name alone: `ws://TOKEN@host` or `TOKEN@host:9` is printed whole.
 */
import { describe, expect, it } from 'vitest'
import { admin } from '../../src/server/admin-cli.js'

async function run(args: string[]): Promise<{ code: number; err: string }> {
  let err = ''
  const code = await admin(
    args,
    { BELFRY_API_KEY: 'review-api-key-123' },
    () => {},
    (s) => {
      err += s
    },
  )
  return { code, err }
}

describe('belfry-server admin --url with a user name alone', () => {
  it.each([
    'ws://ghp_s3cretT0ken@127.0.0.1:9',
    'wss://ghp_s3cretT0ken@127.0.0.1:9',
    'ghp_s3cretT0ken@127.0.0.1:9',
  ])('does not print the user info of %s, refused as no http(s) URL', async (url) => {
    const { code, err } = await run(['user', 'ann', '--url', url])
    expect(code).toBe(2)
    expect(err).not.toContain('ghp_s3cretT0ken')
  })
})
