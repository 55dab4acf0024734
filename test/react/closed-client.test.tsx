/**
 * belfry/react after the app closed the provider's client for good (a logout,
 * a fatal auth): a hook's request must not make and connect a client nobody
 * holds.
 */
import { act, render, cleanup as unmountAll } from '@testing-library/react'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { NotificationClient } from '../../src/index.js'
import { BelfryProvider, useBelfryClient, useNotifications } from '../../src/react/index.js'
import { cleanup, createClient, startMockServer, tick } from '../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  unmountAll()
  cleanup()
})

const settle = (ms = 20) => act(() => tick(ms))

describe('BelfryProvider with a client the app closed', () => {
  it('a hook request after client.close() does not leave a new, unheld client connected after the provider unmounts', async () => {
    const server = startMockServer()
    const made: NotificationClient[] = []
    const make = () => {
      const { client } = createClient(server)
      made.push(client)
      return client
    }
    let api: ReturnType<typeof useNotifications> | undefined
    let live: NotificationClient | undefined
    function Inbox() {
      api = useNotifications()
      live = useBelfryClient()
      return null
    }
    const view = render(
      <BelfryProvider client={make}>
        <Inbox />
      </BelfryProvider>,
    )
    await settle()
    expect(made).toHaveLength(1)
    expect(live).toBe(made[0])

    // The app logs out: it closes the client the provider gave it.
    await act(async () => live!.close())
    await settle()
    // A button still on screen marks everything read.
    await act(async () => {
      api!.markAllRead().catch(() => {})
    })
    await settle(100)

    view.unmount()
    await settle(100)
    // Every client the provider made is closed once it is gone; no socket is left open.
    expect(made.map((c) => c.state)).toEqual(made.map(() => 'closed'))
    expect(server.peers.filter((p) => !p.closed)).toHaveLength(0)
  })
})
