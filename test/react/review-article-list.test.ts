/**
 * Review (article compatibility): belfry/react's list against a server that speaks only the
 * article's protocol. The client hands each of that server's notifications to the app with
 * `id: ''` and `seq: 0` (docs/protocol.md, "belfry's client against the article's server"),
 * and the README promises that `useNotifications().notifications` holds "the notifications that
 * arrived since the client was made ... newest first".
 */
import { act, render, cleanup as unmountAll } from '@testing-library/react'
import { createElement } from 'react'
import { afterEach, beforeEach, expect, it, vi } from 'vitest'
import type { JsonObject } from '../../src/index.js'
import { BelfryProvider, useNotifications } from '../../src/react/index.js'
import { cleanup, createClient, startMockServer, tick } from '../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  unmountAll()
  cleanup()
})

const settle = (ms = 20) => act(() => tick(ms))

it('against the article’s server, the list holds every notification that arrived, newest first, not only the latest', async () => {
  // The article's service: its auth_success has no seq; its frames are {type, ...fields, timestamp}.
  const server = startMockServer({
    auth: (peer) => peer.send({ type: 'auth_success', message: 'Connected to notification service' }),
  })
  let slice: ReturnType<typeof useNotifications> | undefined
  function List() {
    slice = useNotifications()
    return null
  }
  render(createElement(BelfryProvider<JsonObject>, { client: () => createClient(server).client, children: createElement(List) }))
  await settle()
  expect(slice).toBeDefined()

  const stamp = (i: number) => new Date(Date.UTC(2024, 0, 1, 0, 0, i)).toISOString()
  for (const [i, title] of ['one', 'two', 'three'].entries()) {
    server.peer.send({ type: 'notification', title, body: `body ${title}`, priority: 'high', timestamp: stamp(i) })
    await settle()
  }

  expect(slice!.notifications.map((n) => n.title)).toEqual(['three', 'two', 'one'])
})
