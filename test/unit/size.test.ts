import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runInNewContext } from 'node:vm'
import { transformSync } from 'esbuild'
import * as React from 'react'
import { createElement } from 'react'
import { renderToString } from 'react-dom/server'
import ReconnectingWebSocket from 'reconnecting-websocket'
import { describe, expect, it } from 'vitest'
import {
  CLIENT_SIZE_LIMIT_BYTES,
  DESKTOP_SIZE_BUDGET_BYTES,
  REACT_SIZE_LIMIT_BYTES,
  SHARED_SIZE_BUDGET_BYTES,
} from '../../bench/client-size.js'
import {
  buildReactPackage,
  bundleClient,
  bundleClientWith,
  bundleReact,
  classMembers,
  LISTENER_CALL,
  MESSAGE_LISTENER,
  ON_HANDLER_CALL,
  RWS_SOURCE,
  RWS_UNUSED,
  rwsSource,
  rwsTrimmed,
  rwsWithoutDebug,
  useClientFirst,
  WEBSOCKET_CHECK,
} from '../../scripts/client-bundle.js'

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

  it('pulls in no Node module, no server code and no React', async () => {
    const { code, inputs } = await bundleClient()
    expect(
      inputs.filter((i) => i.startsWith('node:') || i.includes('node_modules/ws/') || i.includes('src/server/') || i.includes('react')),
    ).toEqual([])
    expect(code).not.toMatch(/\brequire\(/)
    expect(code).not.toMatch(/from\s*["']react/)
  })

  it('imports reconnecting-websocket from the transport only', () => {
    const files = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'))
    const importers = files.filter((f) => /from 'reconnecting-websocket'/.test(readFileSync(join(ROOT, 'src', f), 'utf8')))
    expect(importers).toEqual([join('client', 'transport.ts')])
  })

  it('is what the tests run: reconnecting-websocket compiled from its source, not its ES5 build, as it is bundled', () => {
    // The ES5 build defines a constructor function; the source compiles to a class.
    const source = Function.prototype.toString.call(ReconnectingWebSocket)
    expect(source).toMatch(/^class\b/)
    expect(source).not.toMatch(/\._\w/) // private members renamed, debug calls gone
  })

  it('leaves out every debug call of reconnecting-websocket, and nothing else', () => {
    const original = readFileSync(RWS_SOURCE, 'utf8')
    expect(original.match(/this\._debug\(/g)?.length ?? 0).toBeGreaterThan(10)
    // Line by line: what is left is the original without the lines that call _debug.
    const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '')
    expect(lines(rwsWithoutDebug())).toEqual(lines(original).filter((l) => !l.trim().startsWith('this._debug(')))
  })

  it("leaves out reconnecting-websocket's on… handler properties and their four calls, and nothing else", () => {
    const original = rwsWithoutDebug()
    expect(original.match(ON_HANDLER_CALL)).toHaveLength(4)
    const trimmed = rwsTrimmed()
    expect(trimmed).not.toMatch(/\bthis\.on(open|message|error|close)\b/)
    // Then the properties themselves, which nothing reads now (RWS_UNUSED); its other lines stay.
    expect(RWS_UNUSED).toEqual(expect.arrayContaining(['onopen', 'onmessage', 'onerror', 'onclose']))
    expect(trimmed).not.toMatch(/\bon(open|message|error|close)\b/)
    const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '')
    expect(lines(original).length - lines(original.replace(ON_HANDLER_CALL, '')).length).toBe(12)
  })

  it("leaves out reconnecting-websocket's four calls of its own listeners and its listener lists, which nothing can add to", () => {
    const original = rwsWithoutDebug()
    expect(original.match(LISTENER_CALL)).toHaveLength(4)
    // Its addEventListener, the only method that adds to _listeners, is left out too.
    expect(RWS_UNUSED).toEqual(expect.arrayContaining(['addEventListener', '_listeners', '_callEventListener']))
    expect(rwsTrimmed()).not.toMatch(/_listeners|_callEventListener/)
    const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '')
    expect(lines(original).length - lines(original.replace(LISTENER_CALL, '')).length).toBe(4)
  })

  it("leaves out reconnecting-websocket's message handler, which does nothing once its calls are gone, and its two listener lines", () => {
    const original = rwsWithoutDebug()
    expect(original.match(MESSAGE_LISTENER)).toHaveLength(2)
    // What it does: the calls of the handler property and of the listeners, both left out (above).
    const body = /_handleMessage = \(event: MessageEvent\) => \{([^}]*(\}[^}]*)*?)\};/.exec(original)?.[1] ?? ''
    expect(body.replace(ON_HANDLER_CALL, '').replace(LISTENER_CALL, '').trim()).toBe('')
    expect(RWS_UNUSED).toContain('_handleMessage')
    expect(rwsTrimmed()).not.toMatch(/_handleMessage|EventListener\('message'/)
    const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '')
    expect(lines(original).length - lines(original.replace(MESSAGE_LISTENER, '')).length).toBe(2)
  })

  it("leaves out reconnecting-websocket's check of the WebSocket class, which the client's options make first, and nothing else", () => {
    const original = rwsWithoutDebug()
    // Its check is the one options.WebSocket must pass (options.test.ts: a TypeError naming it).
    expect(original).toMatch(/const isWebSocket = \(w: any\) => typeof w !== 'undefined' && !!w && w\.CLOSING === 2;/)
    expect(readFileSync(join(ROOT, 'src', 'client', 'options.ts'), 'utf8')).toMatch(/\.CLOSING === 2, 'a WebSocket constructor/)
    const trimmed = rwsTrimmed()
    expect(trimmed).not.toMatch(/No valid WebSocket class|isWebSocket\(WebSocket\)|= getGlobalWebSocket\(\),/)
    // The transport always passes the class, so the default goes and nothing else.
    expect(trimmed).toMatch(/^\s*WebSocket,$/m)
    const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '')
    const without = original.replace(ON_HANDLER_CALL, '').replace(LISTENER_CALL, '')
    expect(lines(without).length - lines(without.replace(WEBSOCKET_CHECK[1], '')).length).toBe(3)
    expect(readFileSync(join(ROOT, 'src', 'client', 'transport.ts'), 'utf8')).toMatch(/WebSocket: Hooked,/)
  })

  it('leaves out the members of reconnecting-websocket in RWS_UNUSED, and nothing else; no member kept refers to one', () => {
    const before = classMembers(rwsWithoutDebug()).map((m) => m.name)
    const after = classMembers(rwsTrimmed()).map((m) => m.name)
    for (const name of RWS_UNUSED) expect(before, name).toContain(name)
    expect(after).toEqual(before.filter((name) => !RWS_UNUSED.includes(name)))
    expect(after).toEqual(expect.arrayContaining(['reconnect', 'send', 'close', 'OPEN', 'CLOSED']))
    for (const name of RWS_UNUSED) expect(rwsTrimmed(), name).not.toMatch(new RegExp(`\\b(this|ReconnectingWebSocket)\\.${name}\\b`))
  })

  it('is used by the transport only through what the trim keeps: the constructor, reconnect, send and close', () => {
    const transport = readFileSync(join(ROOT, 'src', 'client', 'transport.ts'), 'utf8')
    const used = new Set([...transport.matchAll(/\brws\??\.(\w+)/g)].map((m) => m[1]))
    expect([...used].sort()).toEqual(['close', 'reconnect', 'send'])
    // Its only instance is that variable.
    expect(transport.match(/new ReconnectingWebSocket\(/g)).toHaveLength(1)
    expect(transport).toMatch(/rws \?\?= new ReconnectingWebSocket\(/)
  })

  it('renames only the private members of reconnecting-websocket (the client tests run this code)', () => {
    const original = rwsWithoutDebug()
    const compiled = rwsSource()
    expect(compiled).not.toMatch(/\._\w/)
    // Its public surface keeps its names.
    for (const name of ['reconnect', 'send', 'close', 'OPEN', 'CLOSED', 'startClosed', 'maxEnqueuedMessages']) {
      expect(compiled, name).toContain(name)
    }
    // Every private member name of the original became one distinct short name.
    const privates = new Set(original.match(/\b_[a-zA-Z]\w*/g))
    expect(privates.size).toBeGreaterThan(20)
  })
})

describe('belfry/react bundle', () => {
  it(`is at most ${REACT_SIZE_LIMIT_BYTES} B min + gzip in an app's production build, React and the client left to the app`, async () => {
    const { gzip } = await bundleReact()
    expect(gzip).toBeLessThanOrEqual(REACT_SIZE_LIMIT_BYTES)
  })

  it("is its own files only: React stays an import, and the client is not in it ('belfry' is types only)", async () => {
    const { inputs, imports } = await bundleReact()
    expect(inputs.sort()).toEqual(['src/react/binding.ts', 'src/react/index.ts', 'src/react/store.ts'])
    expect(imports).toEqual(['react'])
  })

  // The development-only checks of src/react/binding.ts: their messages, their catch of a missing `process`, and the
  // expression itself. Each must be in the development build (or the test would look for nothing).
  const CHECKS = ['must be', 'BelfryProvider: client', 'BelfryProvider: maxItems', 'useNotificationEvent: type', 'ReferenceError']

  it("leaves its development-only checks out of an app's production build (esbuild), which the limit holds", async () => {
    const [production, development] = await Promise.all([bundleReact(), bundleReact('development')])
    for (const text of CHECKS) {
      expect(development.code, text).toContain(text)
      expect(production.code, text).not.toContain(text)
    }
    expect(production.code).not.toMatch(/process|NODE_ENV/)
  })

  it("leaves them out of an app's `vite build` too (NODE_ENV unset: Vite's production build)", () => {
    /** `vite build` of the entry, with NODE_ENV as given, in a process of its own: vitest set this one's to 'test'. */
    const viteBuild = (NODE_ENV?: string) => {
      const { NODE_ENV: _, ...env } = process.env
      const script = `
        import { build } from 'vite'
        const out = await build({
          root: ${JSON.stringify(ROOT)}, configFile: false, logLevel: 'silent',
          build: { write: false, rollupOptions: { input: 'src/react/index.ts', external: [/^react/, 'belfry'], preserveEntrySignatures: 'strict' } },
        })
        process.stdout.write(out.output[0].code)`
      return execFileSync(process.execPath, ['--input-type=module', '-e', script], {
        cwd: ROOT,
        env: NODE_ENV ? { ...env, NODE_ENV } : env,
        encoding: 'utf8',
      })
    }
    const [production, development] = [viteBuild(), viteBuild('development')]
    for (const text of CHECKS) {
      expect(development, text).toContain(text)
      expect(production, text).not.toContain(text)
    }
    expect(production).toMatch(/useSyncExternalStore/)
    expect(production).not.toMatch(/process|NODE_ENV/)
  }, 60_000)

  it("ships `process.env.NODE_ENV` for the app's bundler, and runs where no `process` is defined: no checks", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-react-'))
    try {
      await buildReactPackage(join(dir, 'index.js'))
      const shipped = readFileSync(join(dir, 'index.js'), 'utf8')
      expect(shipped).toMatch(/process\.env\.NODE_ENV !== "production"/)
      // The shipped module as CommonJS, run in a context of its own: its globals are the context's, and they have
      // a `process` only when given one.
      const { code } = transformSync(shipped, { format: 'cjs' })
      const load = (globals: object) => {
        const module = { exports: {} as { BelfryProvider: typeof import('../../src/react/index.js').BelfryProvider } }
        const require = (id: string) => (id === 'react' ? React : undefined)
        runInNewContext(code, { ...globals, module, exports: module.exports, require })
        return module.exports.BelfryProvider
      }
      const bad = (globals: object) => () => renderToString(createElement(load(globals), { client: {} as never, maxItems: Number.NaN }))
      expect(bad({ process: { env: { NODE_ENV: 'development' } } })).toThrow(/^BelfryProvider: client must be/)
      expect(bad({ process: { env: { NODE_ENV: 'production' } } })).not.toThrow()
      // No ReferenceError: what no bundler touched, where no `process` is defined, runs without the checks.
      expect(bad({})).not.toThrow()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("starts with 'use client'", async () => {
    const { code } = await bundleReact()
    expect(code).toMatch(/^"use client";/)
    // Put back if the bundler ever drops it; left alone when it is there.
    expect(useClientFirst('export{}')).toBe("'use client';\nexport{}")
    expect(useClientFirst(code)).toBe(code)
  })
})

describe.each([
  ['shared', SHARED_SIZE_BUDGET_BYTES],
  ['desktop', DESKTOP_SIZE_BUDGET_BYTES],
] as const)('belfry/%s', (entry, budget) => {
  it(`adds at most ${budget} bytes min + gzip to the client, and the client alone carries none of it`, async () => {
    const [alone, both] = await Promise.all([bundleClient(), bundleClientWith(entry)])
    expect(alone.inputs.filter((i) => i.includes(`src/${entry}/`))).toEqual([])
    expect(both.inputs).toContain(`src/${entry}/index.ts`)
    expect(both.gzip - alone.gzip).toBeGreaterThan(0)
    expect(both.gzip - alone.gzip).toBeLessThanOrEqual(budget)
  })
})

describe('CONTRIBUTING.md', () => {
  const text = readFileSync(join(ROOT, 'CONTRIBUTING.md'), 'utf8').replace(/\s+/g, ' ')
  /** The last byte figure ("1,280 B") written before `name`, within a sentence's length. */
  const documented = (name: string) => {
    const match = new RegExp(`([\\d,]+) B\\b(?:(?![\\d,]+ B\\b).){0,200}?\`${name}\``).exec(text)
    return match ? Number(match[1]!.replace(/,/g, '')) : undefined
  }
  it.each([
    ['CLIENT_SIZE_LIMIT_BYTES', CLIENT_SIZE_LIMIT_BYTES],
    ['REACT_SIZE_LIMIT_BYTES', REACT_SIZE_LIMIT_BYTES],
    ['SHARED_SIZE_BUDGET_BYTES', SHARED_SIZE_BUDGET_BYTES],
    ['DESKTOP_SIZE_BUDGET_BYTES', DESKTOP_SIZE_BUDGET_BYTES],
  ] as const)('gives %s as the figure the test holds the bundle to', (name, bytes) => {
    expect(documented(name)).toBe(bytes)
  })
})

// README states today's sizes ("today **N B**", "N B now", "adds N B"): each must be what `npm run size` measures
// now, or README tells a reader a size the code no longer has.
describe("README's size figures", () => {
  const text = readFileSync(join(ROOT, 'README.md'), 'utf8').replace(/\s+/g, ' ')
  const bytes = (pattern: RegExp) => {
    const match = pattern.exec(text)
    expect(match, String(pattern)).not.toBeNull()
    return Number(match![1]!.replace(/,/g, ''))
  }
  it('are the sizes the client and its opt-in entries have now', async () => {
    const client = (await bundleClient()).gzip
    const shared = (await bundleClientWith('shared')).gzip - client
    const desktop = (await bundleClientWith('desktop')).gzip - client
    const react = (await bundleReact()).gzip
    const reactDevelopment = (await bundleReact('development')).gzip
    expect({
      'today (Size)': bytes(/the figures: today \*\*([\d,]+) B\*\*/),
      'now (targets table)': bytes(/ in that run, ([\d,]+) B now/),
      'belfry/shared adds': bytes(/`belfry\/shared` adds ([\d,]+) B/),
      // "One socket per browser" rounds it to 0.1 KB: 1.7 KB stayed there after belfry/shared grew past 1,791 B.
      'belfry/shared adds, in KB': bytes(/it adds about ([\d.]+) KB min \+ gzip to the client; `npm run size`/),
      'belfry/desktop adds': bytes(/`belfry\/desktop` ([\d,]+) B \(held/),
      'belfry/react is': bytes(/`belfry\/react` is ([\d,]+) B \(held/),
      'belfry/react today (React)': bytes(/\(today ([\d,]+) B\), React and the client/),
      'belfry/react in development (React)': bytes(/a development build, with the checks, it is ([\d,]+) B/),
    }).toEqual({
      'today (Size)': client,
      'now (targets table)': client,
      'belfry/shared adds': shared,
      'belfry/shared adds, in KB': Math.round((shared / 1024) * 10) / 10,
      'belfry/desktop adds': desktop,
      'belfry/react is': react,
      'belfry/react today (React)': react,
      'belfry/react in development (React)': reactDevelopment,
    })
  }, 60_000)
})
