import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'
import { describe, expect, it } from 'vitest'
import { CLIENT_BUDGET_BYTES } from '../../bench/client-size.js'

const ROOT = new URL('../../', import.meta.url).pathname

/** Bundles the public client entry the way an app's bundler would: browser, ES module, minified. */
async function bundleClient() {
  const result = await build({
    entryPoints: [join(ROOT, 'src/index.ts')],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    metafile: true,
    // Licence comments are not code: a production build ships them beside the bundle
    // (legalComments: 'external' or 'linked'), so they are left out of the measure.
    legalComments: 'none',
    logLevel: 'silent',
  })
  const code = result.outputFiles[0]!.text
  return { code, gzip: gzipSync(code, { level: 9 }).length, inputs: Object.keys(result.metafile.inputs) }
}

describe('client bundle', () => {
  it(`stays within the size budget (min + gzip ≤ ${CLIENT_BUDGET_BYTES} bytes), dependencies included`, async () => {
    const { gzip, inputs } = await bundleClient()
    expect(inputs.some((i) => i.includes('reconnecting-websocket'))).toBe(true)
    expect(inputs.some((i) => i.includes('mitt'))).toBe(true)
    expect(gzip).toBeLessThanOrEqual(CLIENT_BUDGET_BYTES)
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
})
