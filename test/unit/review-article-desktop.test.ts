/**
 * Review (article compatibility): belfry/desktop on a client whose server speaks only the
 * article's protocol. The client hands each of that server's notifications over with `id: ''`
 * (docs/protocol.md, "belfry's client against the article's server"); belfry/desktop promises
 * "one per notification, with bursts folded into a summary", the summary counting what it folds,
 * and, "with a socket per tab", that "the tag ... makes the browser keep one".
 */
import { afterEach, beforeEach, expect, it, vi } from 'vitest'
import { desktopNotifications } from '../../src/desktop/index.js'
import { cleanup, createClient, type MockServer, startMockServer, tick } from '../helpers/mock-server.js'

/** A Notification constructor that behaves as a browser's does with tags: a new one replaces the one on screen with the same non-empty tag. */
function browserNotifications() {
  const screen: { title: string; tag: string }[] = []
  const made: string[] = []
  class Fake {
    static permission: NotificationPermission = 'granted'
    static async requestPermission() {
      return Fake.permission
    }
    onclick: (() => void) | null = null
    constructor(title: string, options: NotificationOptions = {}) {
      const tag = options.tag ?? ''
      made.push(title)
      const same = tag ? screen.findIndex((s) => s.tag === tag) : -1
      if (same >= 0) screen.splice(same, 1)
      screen.push({ title, tag })
    }
    close() {}
  }
  return { Ctor: Fake as unknown as typeof Notification, screen, made }
}

/** The article's service: its auth_success has no seq. */
const articleServer = (): MockServer =>
  startMockServer({ auth: (peer) => peer.send({ type: 'auth_success', message: 'Connected to notification service' }) })

/** What the article's service sends: the publisher's fields spread, and the time it sent them (one string for all the user's sockets). */
const articleFrame = (title: string, timestamp: string) => ({
  type: 'notification',
  title,
  body: `body of ${title}`,
  priority: 'high',
  timestamp,
})

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  cleanup()
})

it('a burst from the article’s server is folded into a summary that counts every notification it holds', async () => {
  const server = articleServer()
  const { client } = createClient(server)
  const browser = browserNotifications()
  desktopNotifications(client, { Notification: browser.Ctor, anyTabVisible: () => false })
  client.connect()
  await tick()
  expect(client.state).toBe('online')

  // Three distinct notifications within the interval (2 s): the first alone, the other two in one summary.
  for (const [i, title] of ['one', 'two', 'three'].entries()) {
    server.peer.send(articleFrame(title, new Date(Date.UTC(2024, 0, 1, 0, 0, 0, i * 100)).toISOString()))
    await tick(100)
  }
  await vi.advanceTimersByTimeAsync(2500)
  expect(browser.made).toEqual(['one', '2 new notifications'])
})

it('two tabs with a socket each show one desktop notification for one notification of the article’s server, not one per tab', async () => {
  const server = articleServer()
  const browser = browserNotifications()
  for (let tab = 0; tab < 2; tab++) {
    const { client } = createClient(server)
    desktopNotifications(client, { Notification: browser.Ctor, anyTabVisible: () => false })
    client.connect()
  }
  await tick()
  expect(server.peers).toHaveLength(2)

  // The article's sendToUser: one frame, the same text on each of the user's sockets.
  const frame = articleFrame('New Message', '2024-01-01T00:00:00.000Z')
  for (const peer of server.peers) peer.send(frame)
  await tick()
  expect(browser.made).toEqual(['New Message', 'New Message']) // each tab shows its own, as with a belfry server
  expect(browser.screen.map((s) => s.title)).toEqual(['New Message']) // …and the browser keeps one
})
