/**
 * Review: the routes that serve HEAD (/healthz, /metrics, GET /api/admin/users) answer
 * another method 405 with `Allow: GET`, which leaves HEAD out. The Allow header lists the
 * methods the resource supports (RFC 9110 §10.2.1).
 */
import { expect, it } from 'vitest'
import { API_KEY, useServer } from '../helpers/server.js'

const start = useServer()

it.each(['/healthz', '/metrics', '/api/admin/users?id=ann'])('%s: HEAD is served, and a 405 there lists it in Allow', async (path) => {
  const s = await start({ metrics: { token: 'metrics-token-123' } })
  const authorization = `Bearer ${path === '/metrics' ? 'metrics-token-123' : API_KEY}`
  const head = await fetch(`${s.url}${path}`, { method: 'HEAD', headers: { authorization } })
  expect(head.status).not.toBe(405)
  const put = await fetch(`${s.url}${path}`, { method: 'PUT', headers: { authorization } })
  expect(put.status).toBe(405)
  const allowed = (put.headers.get('allow') ?? '').split(',').map((m) => m.trim())
  expect(allowed).toEqual(expect.arrayContaining(['GET', 'HEAD']))
})
