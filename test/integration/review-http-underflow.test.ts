/**
 * Review: a publish whose `data` holds a number JSON carries but a double cannot (1e-400,
 * which JSON.parse reads as 0) is stored and delivered as 0 with a 201. The README refuses
 * 1e400 for this reason (it would be stored as null); a value that underflows to zero
 * loses all its digits the same way, and should be refused with a 400 saying so.
 */
import { expect, it } from 'vitest'
import { API_KEY, useServer } from '../helpers/server.js'

const start = useServer()

it('400 for data holding a number that underflows to zero (1e-400), nothing stored', async () => {
  const s = await start()
  const res = await fetch(`${s.url}/api/notifications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
    body: '{"userId":"ann","title":"t","body":"","data":{"tolerance":1e-400}}',
  })
  const json = (await res.json()) as Record<string, unknown>
  expect(res.status).toBe(400)
  expect(json).toMatchObject({ error: 'bad_request' })
  const user = await fetch(`${s.url}/api/admin/users?id=ann`, { headers: { authorization: `Bearer ${API_KEY}` } })
  expect(user.status).toBe(404) // never sent to
})
