/**
 * Review: NotificationClient.on() with a handler that is no function (`client.on('error', this.onError)`
 * before the method exists, a handler's call result passed for the handler). It is taken: on each event of
 * its type the wrapper calls it and reports "a \"notification\" subscriber threw" (cause "handler is not a
 * function"), a subscriber the app never wrote; on `error` it is dropped silently, with every error it was
 * meant to hear (an AuthError that stops the client). The standard: a bad argument is a TypeError, at the call,
 * that says what it got and what is expected (as ready()'s arguments and every option are).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { cleanup, createClient, startMockServer } from '../../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(cleanup)

describe('NotificationClient.on()', () => {
  it.each(['notification', 'error', 'status'] as const)('refuses a %s handler that is no function with a TypeError', (type) => {
    const { client } = createClient(startMockServer())
    for (const handler of [undefined, 'onError', { handleEvent() {} }]) {
      expect(() => client.on(type, handler as never), String(handler)).toThrow(TypeError)
    }
    expect(() => client.on(type, () => {})()).not.toThrow()
  })
})
