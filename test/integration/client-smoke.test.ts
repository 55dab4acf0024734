import { rmSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import { buildClientPackage } from '../../scripts/client-bundle.js'
import type * as Belfry from '../../src/index.js'
import { startServer, type TestServer } from '../helpers/server.js'

/**
 * One round trip with the client from the source (as every other test runs
 * it) and with the package build, `dist/index.js` as `npm run build` writes
 * it, loaded by Node itself: what an app installs.
 */

// Inside the project, so that the build's one import, mitt, resolves as it would in an app.
const PACKAGE_DIR = fileURLToPath(new URL('../../node_modules/.cache/belfry-package-test/', import.meta.url))
afterAll(() => rmSync(PACKAGE_DIR, { recursive: true, force: true }))

const builds: [string, () => Promise<typeof Belfry>][] = [
  ['source', () => import('../../src/index.js')],
  [
    'package build',
    async () => {
      await buildClientPackage(`${PACKAGE_DIR}index.js`)
      return import(/* @vite-ignore */ pathToFileURL(`${PACKAGE_DIR}index.js`).href)
    },
  ],
]

let t: TestServer
let client: Belfry.NotificationClient | undefined
afterEach(async () => {
  client?.close()
  await t?.dispose()
})

describe.each(builds)('client smoke (%s)', (_, load) => {
  it('connects, receives, survives a restart and resumes', async () => {
    const { NotificationClient } = await load()
    t = await startServer()
    const got: Belfry.Notification[] = []
    client = new NotificationClient({
      url: t.wsUrl,
      token: () => t.token('carol'),
      WebSocket,
      backoff: { initial: 50, max: 200 },
    })
    client.on('notification', (n) => got.push(n))
    client.connect()
    await client.ready()
    await t.server.sendToUser('carol', { title: 'one', body: '' })
    await vi.waitFor(() => expect(got.map((n) => n.seq)).toEqual([1]))
    await t.restart()
    await t.server.sendToUser('carol', { title: 'two', body: '' })
    await vi.waitFor(() => expect(got.map((n) => n.seq)).toEqual([1, 2]), { timeout: 5000 })
    expect(client.unreadCount).toBe(2)
    await client.markAllRead()
    expect(client.unreadCount).toBe(0)
    const page = await client.history({ limit: 10 })
    expect(page.items.map((n) => n.seq)).toEqual([2, 1])
  })
})
