/**
 * Review: the README says a bad notification given to the programmatic API
 * "rejects with a TypeError (the checks of the HTTP API)", and the HTTP API
 * refuses any field it does not know ("Any other field is refused"). But
 * checkNotification (src/server/publish-input.ts) ignores unknown fields, and
 * only parsePublishBody looks for them: a typo such as `priorty: 'high'` is
 * stored as a medium-priority notification, `date` or `icon` vanish, with no
 * error, where the same body over HTTP is a 400.
 */
import { describe, expect, it } from 'vitest'
import type { NotificationInput } from '../../src/server/index.js'
import { httpPublish, useServer } from '../helpers/server.js'

const start = useServer()

describe('programmatic API: the checks of the HTTP API', () => {
  it('a notification with a field the HTTP API refuses (a typo: "priorty") rejects with a TypeError', async () => {
    const s = await start()
    const notification = { title: 'Deploy failed', body: 'api', priorty: 'high' } as unknown as NotificationInput
    const http = await httpPublish(s.url, { userId: 'ann', ...notification })
    expect(http.status).toBe(400)
    const result = await s.server.sendToUser('ann', notification).then(
      () => 'resolved',
      (e: unknown) => (e as Error).name,
    )
    expect(result).toBe('TypeError')
  })
})
