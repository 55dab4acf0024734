/**
 * The belfry package bundles reconnecting-websocket (MIT) into dist/index.js,
 * and MIT asks that its copyright notice and permission notice go with every
 * copy. The package keeps only a "by Pedro Ladaria … License MIT" comment: its
 * copyright line and its permission text are in none of its files (its LICENSE
 * is belfry's own). belfry-server's demo page, which bundles the same code,
 * ships dist/demo/licenses.md for exactly this (packaging.test.ts).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { pack } from '../../scripts/pack.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
let out: string
let tarball: string

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'belfry-pack-'))
  tarball = (await pack(`${out}/`)).belfry
}, 120_000)
afterAll(() => rmSync(out, { recursive: true, force: true }))

it('ships, in the belfry package, the copyright and permission notice of reconnecting-websocket, which it bundles', () => {
  const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
    .split('\n')
    .filter((f) => f.startsWith('package/') && !f.endsWith('/'))
    .map((f) => f.slice('package/'.length))
  const text = (f: string) => readFileSync(join(out, 'packages/belfry', f), 'utf8')
  // It is bundled (as the package's doc says): its code is in the entry.
  expect(/maxReconnectionDelay/.test(text('dist/index.js')), 'reconnecting-websocket is bundled').toBe(true)

  const license = readFileSync(join(ROOT, 'node_modules/reconnecting-websocket/LICENSE'), 'utf8')
  const copyright = /^Copyright.*$/m.exec(license)![0] // "Copyright (c) 2018 Pedro Ladaria"
  const shipped = files.filter((f) => !f.endsWith('.svg')).map((f) => [f, text(f)] as const)
  const holding = shipped.filter(([, t]) => t.includes(copyright)).map(([f]) => f)
  expect(holding, `a file with "${copyright}"`).not.toEqual([])
  // …with the MIT permission notice beside it.
  const beside = shipped.filter(([, t]) => new RegExp(`${copyright.replace(/[()]/g, '\\$&')}[\\s\\S]*Permission is hereby granted`).test(t))
  expect(beside.map(([f]) => f)).not.toEqual([])
})
