/**
 * Review: desktopNotifications' option TypeErrors. An `interval` given as a
 * string ("2000", as from a data attribute or env) is reported as `got 2000`,
 * which reads like a valid number (its own comment, and the client's `show`,
 * quote strings); and a `Notification` that is no constructor is not refused at
 * all: it silently makes every notification 'unsupported'.
 */
import { describe, expect, it } from 'vitest'
import { desktopNotifications } from '../../src/desktop/index.js'
import type { NotificationClient } from '../../src/index.js'

const client = { mode: 'solo', on: () => () => {} } as unknown as NotificationClient

describe('desktopNotifications option TypeErrors', () => {
  it('quotes a string interval in what it got', () => {
    expect(() => desktopNotifications(client, { interval: '2000' as never })).toThrow(
      new TypeError('desktopNotifications: interval must be a number of ms ≥ 0; got "2000"'),
    )
  })

  it('refuses a Notification that is no constructor, saying what it got', () => {
    expect(() => desktopNotifications(client, { Notification: 'Notification' as never, anyTabVisible: () => false })).toThrow(
      /desktopNotifications: Notification must be .*; got "Notification"$/,
    )
  })
})
