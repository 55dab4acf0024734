import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import ReconnectingWebSocket from 'reconnecting-websocket'
import { describe, expect, it } from 'vitest'
import { CLIENT_SIZE_LIMIT_BYTES } from '../../bench/client-size.js'
import { bundleClient, RWS_SOURCE, rwsSource } from '../../scripts/client-bundle.js'

const ROOT = new URL('../../', import.meta.url).pathname

describe('client bundle', () => {
  it(`is at most 6.5 KB min + gzip (${CLIENT_SIZE_LIMIT_BYTES} bytes), dependencies and licence comments included`, async () => {
    const { gzip, inputs } = await bundleClient()
    expect(inputs).toContain('node_modules/reconnecting-websocket/reconnecting-websocket.ts')
    expect(inputs.some((i) => i.includes('mitt'))).toBe(true)
    expect(gzip).toBeLessThanOrEqual(CLIENT_SIZE_LIMIT_BYTES)
  })

  it('keeps the licence of the bundled reconnecting-websocket', async () => {
    const { code } = await bundleClient()
    expect(code).toMatch(/Reconnecting WebSocket[\s\S]*License MIT/)
  })

  it('pulls in no Node module and no server code', async () => {
    const { code, inputs } = await bundleClient()
    expect(inputs.filter((i) => i.startsWith('node:') || i.includes('node_modules/ws/') || i.includes('src/server/'))).toEqual([])
    expect(code).not.toMatch(/\brequire\(/)
  })

  it('imports reconnecting-websocket from the transport only', () => {
    const files = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'))
    const importers = files.filter((f) => /from 'reconnecting-websocket'/.test(readFileSync(join(ROOT, 'src', f), 'utf8')))
    expect(importers).toEqual([join('client', 'transport.ts')])
  })

  it('is what the tests run: reconnecting-websocket compiled from its source, not its ES5 build, without debug calls', () => {
    // The ES5 build defines a constructor function; the source compiles to a class.
    const source = Function.prototype.toString.call(ReconnectingWebSocket)
    expect(source).toMatch(/^class\b/)
    expect(source).toContain('_debug(') // the method is there…
    expect(source).not.toMatch(/this\._debug\(/) // …and no call of it
  })

  it('leaves out every debug call of reconnecting-websocket, and only those', async () => {
    const original = readFileSync(RWS_SOURCE, 'utf8')
    const calls = original.match(/this\._debug\(/g)?.length ?? 0
    expect(calls).toBeGreaterThan(10)
    const kept = rwsSource()
    expect(kept).not.toMatch(/this\._debug\(/)
    // Line by line: what is left is the original without the lines that call _debug.
    const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '')
    expect(lines(kept)).toEqual(lines(original).filter((l) => !l.trim().startsWith('this._debug(')))
  })
})
