import { describe, expectTypeOf, it } from 'vitest'
import type { Notification, ServerFrame } from '../../src/protocol/index.js'

describe('protocol types', () => {
  it('types a notification payload by its generic', () => {
    type Deploy = { service: string; ok: boolean }
    expectTypeOf<Notification<Deploy>['data']>().toEqualTypeOf<Deploy | undefined>()
    // @ts-expect-error priority is a closed union
    const _bad: Notification['priority'] = 'urgent'
  })

  it('narrows server frames by type', () => {
    const f = {} as ServerFrame
    if (f.type === 'read') expectTypeOf(f.unreadCount).toEqualTypeOf<number>()
    if (f.type === 'replayed') expectTypeOf(f.more).toEqualTypeOf<boolean>()
  })
})
