import { afterEach, describe, expect, it } from 'vitest'
import { ClientPool } from '../helpers/client.js'
import { startServer, type TestServer } from '../helpers/server.js'

/**
 * README ("Delivery, exactly once"): "a token provider that switches users
 * switches cursors with it". The cursor is per user, but the client's topic set
 * is not: after a reconnect (here a deploy) with the next user's token, #online
 * sends every topic the previous user subscribed to, under the new user's token.
 * A subscription belongs to the user and the store keeps it, so the new user
 * ends up following the previous user's topics for good, on all their devices.
 */

let t: TestServer | undefined
const clients = new ClientPool()

afterEach(async () => {
  clients.closeAll()
  await t?.dispose()
  t = undefined
})

describe('review: a token provider that switches users', () => {
  it('does not subscribe the new user to the topics of the previous one', async () => {
    t = await startServer()
    const s = t
    let user = 'ann'
    const { client, events } = await clients.online({ url: s.wsUrl, token: () => s.token(user) })
    client.subscribe('team:ann')
    // Subscribed once a topic publish reaches her.
    await expect
      .poll(async () => {
        if (!events.notifications.some((n) => n.topic === 'team:ann')) await s.server.publish('team:ann', { title: 'for ann', body: '' })
        return events.notifications.some((n) => n.topic === 'team:ann')
      })
      .toBe(true)

    // Ann signs out, Bob signs in on the same page; a deploy makes the client reconnect with Bob's token.
    user = 'bob'
    const onlineBefore = events.count('online')
    await s.restart()
    await expect.poll(() => events.count('online'), { timeout: 10_000 }).toBeGreaterThan(onlineBefore)
    // Let the restored subscribe frame be handled.
    await new Promise((r) => setTimeout(r, 300))

    const { recipients } = await s.server.publish('team:ann', { title: 'ann only', body: '' })
    expect(recipients).toBe(1) // Ann alone follows her team's topic: Bob was subscribed to it too
  })
})
