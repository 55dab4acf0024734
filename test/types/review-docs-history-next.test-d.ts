/**
 * README ("The client"): `client.history({ limit: 20 })` resolves a page whose
 * `next` goes back in as `{ before: page.next }` for the next, older page.
 * `HistoryPage.next` is `number | undefined` (absent on the last page), but
 * `history()` takes `{ before?: number }`: under exactOptionalPropertyTypes —
 * the setting the README's examples are compiled under, and one whose
 * `undefined` every other optional of the client takes (client.test-d.ts,
 * "takes undefined for every option that may be absent") — the documented
 * paging idiom does not compile. belfry/react's own loadMore() needs a cast
 * (`as { before?: number }`) to do it.
 */
import { describe, expectTypeOf, it } from 'vitest'
import { type HistoryPage, NotificationClient } from '../../src/index.js'

const client = new NotificationClient({ url: 'ws://localhost/ws', token: () => 'token' })

describe('README: history paging', () => {
  it('takes page.next back as { before: page.next }', async () => {
    const page = await client.history({ limit: 20 })
    expectTypeOf(page.next).toEqualTypeOf<number | undefined>()
    const older = await client.history({ before: page.next })
    expectTypeOf(older).toEqualTypeOf<HistoryPage>()
  })
})
