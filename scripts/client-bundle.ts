/**
 * The client as it ships. One recipe for the package build, the size test,
 * the benchmark's size table, the demo and the test runs; and at the end, the
 * same for belfry/react's entry.
 *
 * reconnecting-websocket publishes ES5 builds (classes, spreads and its event
 * classes down-levelled through helpers) beside the TypeScript source they are
 * compiled from. The client compiles that source for ES2022 instead: the same
 * code, smaller (`npm run bench` prints both in its client size table). Five
 * more steps make it smaller still, without changing what belfry's transport
 * does with it:
 *
 * - its debug logging is left out: every `this._debug(…)` call, which only
 *   logs when the `debug` option is set, and belfry's transport never sets it;
 * - so are its calls of the `onopen`, `onmessage`, `onerror` and `onclose`
 *   handler properties ({@link ON_HANDLER_CALL}), which it calls only when set,
 *   and belfry's transport never sets them (it listens on the sockets), and
 *   then the properties themselves, which nothing reads;
 * - and its calls of its own listeners ({@link LISTENER_CALL}): with its
 *   `addEventListener` left out (below), nothing can add one;
 * - the members of its class that neither belfry's transport nor the class
 *   itself uses are left out ({@link RWS_UNUSED}): the transport only
 *   constructs it and calls `reconnect`, `send` and `close` (a test holds it
 *   to that), and listens on the sockets it makes, not on it;
 * - its check of the WebSocket class at each connect, and its default, the
 *   global WebSocket ({@link WEBSOCKET_CHECK}): belfry's transport always
 *   passes one, a subclass of `options.WebSocket`, which the client's options
 *   refuse unless it passes that same check (`CLOSING === 2`);
 * - its private members (`_ws`, `_connect`, … — all named with a leading
 *   underscore, used only inside its own file) get short names.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { type BuildOptions, build, type Plugin as EsbuildPlugin, transformSync } from 'esbuild'
import ts from 'typescript'

const ROOT = fileURLToPath(new URL('../', import.meta.url))

/** reconnecting-websocket's TypeScript source, as its package ships it. */
export const RWS_SOURCE = fileURLToPath(import.meta.resolve('reconnecting-websocket/reconnecting-websocket.ts'))

/** One statement per line in the 4.4.0 source; a test checks that none is left. */
const DEBUG_CALL = /^\s*this\._debug\(.*\);\s*$/gm

/** reconnecting-websocket's source without its debug calls (TypeScript). */
export function rwsWithoutDebug(): string {
  return readFileSync(RWS_SOURCE, 'utf8').replace(DEBUG_CALL, '')
}

/**
 * Members of reconnecting-websocket's class that belfry leaves out: the
 * WebSocket-like surface for an app that uses it as its socket (the ready
 * states other than `OPEN` and `CLOSED`, which the class compares with, and
 * the getters, setters and listener methods), `_debug`, whose calls are
 * gone, its listener lists `_listeners` with `_callEventListener`, whose
 * calls ({@link LISTENER_CALL}) are gone, its handler properties `onclose`,
 * `onerror`, `onmessage` and `onopen`, whose calls ({@link ON_HANDLER_CALL})
 * are gone, and `_handleMessage`, which nothing is left for it to call, with
 * its socket listener ({@link MESSAGE_LISTENER}). No method that is kept
 * refers to one of them.
 */
export const RWS_UNUSED: readonly string[] = [
  'CONNECTING',
  'CLOSING',
  'binaryType',
  'retryCount',
  'bufferedAmount',
  'extensions',
  'protocol',
  'readyState',
  'url',
  'addEventListener',
  'dispatchEvent',
  'removeEventListener',
  '_debug',
  '_listeners',
  '_callEventListener',
  'onclose',
  'onerror',
  'onmessage',
  'onopen',
  '_handleMessage',
]

/** The names of a class's members in `source`, one per member (a getter and its setter are two). */
export function classMembers(source: string): { name: string; start: number; end: number }[] {
  const file = ts.createSourceFile('reconnecting-websocket.ts', source, ts.ScriptTarget.Latest, true)
  const classes = file.statements.filter(ts.isClassDeclaration)
  if (classes.length !== 1) throw new Error(`reconnecting-websocket: expected one class, found ${classes.length}`)
  return classes[0]!.members.flatMap((m) =>
    m.name && ts.isIdentifier(m.name) ? [{ name: m.name.text, start: m.getFullStart(), end: m.end }] : [],
  )
}

/**
 * `if (this.onopen) { this.onopen(event); }` and the like, one block per handler in the 4.4.0 source:
 * belfry's transport sets none of the handler properties, which go too ({@link RWS_UNUSED}).
 */
export const ON_HANDLER_CALL = /^\s*if \(this\.(on\w+)\) \{\s*this\.\1\(event\);\s*\}$/gm

/**
 * `this._listeners.open.forEach(listener => this._callEventListener(event, listener));` and the like,
 * one line per event in the 4.4.0 source: only `addEventListener` adds to `_listeners`, and belfry leaves
 * it out ({@link RWS_UNUSED}), so the lists are always empty.
 */
export const LISTENER_CALL = /^\s*this\._listeners\.\w+\.forEach\(listener => this\._callEventListener\(event, listener\)\);$/gm

/**
 * `this._ws.addEventListener('message', this._handleMessage);` and its removal, one line each in the 4.4.0
 * source: with its handler property and its listeners gone, `_handleMessage` does nothing (it goes too,
 * {@link RWS_UNUSED}); belfry's transport listens to its socket's messages itself.
 */
export const MESSAGE_LISTENER = /^\s*this\._ws\.(add|remove)EventListener\('message', this\._handleMessage\);$/gm

/**
 * In `_connect`, the default of its `WebSocket` option (the global one) and the check that throws
 * "No valid WebSocket class provided" unless `WebSocket.CLOSING === 2`, in the 4.4.0 source. belfry's
 * transport always passes the option, a subclass of `options.WebSocket`, and the client's options
 * refuse one that would fail the check (a TypeError naming `options.WebSocket`): it never throws.
 */
export const WEBSOCKET_CHECK = [
  /^(\s*WebSocket) = getGlobalWebSocket\(\),$/m,
  /^\s*if \(!isWebSocket\(WebSocket\)\) \{\s*throw Error\('No valid WebSocket class provided'\);\s*\}$/m,
] as const

/**
 * reconnecting-websocket's source without its debug calls, its calls of the `on…` handler properties
 * ({@link ON_HANDLER_CALL}) and of its listeners ({@link LISTENER_CALL}), its message listener
 * ({@link MESSAGE_LISTENER}), its WebSocket check
 * ({@link WEBSOCKET_CHECK}), and {@link RWS_UNUSED} (TypeScript).
 */
export function rwsTrimmed(): string {
  let source = rwsWithoutDebug().replace(ON_HANDLER_CALL, '').replace(LISTENER_CALL, '').replace(MESSAGE_LISTENER, '')
  if (!WEBSOCKET_CHECK.every((pattern) => pattern.test(source))) throw new Error('reconnecting-websocket: WEBSOCKET_CHECK not found')
  source = source.replace(WEBSOCKET_CHECK[0], '$1,').replace(WEBSOCKET_CHECK[1], '')
  const members = classMembers(source)
  const missing = RWS_UNUSED.filter((name) => !members.some((m) => m.name === name))
  if (missing.length > 0) throw new Error(`reconnecting-websocket has no member ${missing.join(', ')}: check RWS_UNUSED`)
  for (const m of members.reverse()) if (RWS_UNUSED.includes(m.name)) source = source.slice(0, m.start) + source.slice(m.end)
  return source
}

let compiled: string | undefined
/** reconnecting-websocket as belfry bundles it: trimmed ({@link rwsTrimmed}), private members renamed, compiled to ES2022. */
export function rwsSource(): string {
  compiled ??= transformSync(rwsTrimmed(), { loader: 'ts', target: 'es2022', format: 'esm', mangleProps: /^_/ }).code
  return compiled
}

/** For esbuild: reconnecting-websocket as belfry bundles it (see rwsSource). */
export const rwsEsbuild: EsbuildPlugin = {
  name: 'reconnecting-websocket-source',
  setup(b) {
    b.onResolve({ filter: /^reconnecting-websocket$/ }, () => ({ path: RWS_SOURCE }))
    b.onLoad({ filter: /reconnecting-websocket[\\/]reconnecting-websocket\.ts$/ }, () => ({
      contents: rwsSource(),
      loader: 'js',
      resolveDir: dirname(RWS_SOURCE),
    }))
  },
}

/** For Vite and Vitest (a Rollup-style plugin): the same source in place of the ES5 build. */
export function rwsVite() {
  return {
    name: 'reconnecting-websocket-source',
    enforce: 'pre' as const,
    resolveId: (id: string) => (id === 'reconnecting-websocket' ? RWS_SOURCE : undefined),
    load: (id: string) => (id === RWS_SOURCE ? rwsSource() : undefined),
  }
}

const SHARED: BuildOptions = {
  entryPoints: [`${ROOT}src/index.ts`],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  plugins: [rwsEsbuild],
  logLevel: 'silent',
}

/** Writes the package's client entry: readable, licence kept, mitt left to the app's bundler. */
export async function buildClientPackage(outfile = `${ROOT}dist/index.js`): Promise<void> {
  await build({ ...SHARED, outfile, platform: 'neutral', external: ['mitt'], legalComments: 'inline' })
}

export interface ClientBundle {
  code: string
  minified: number
  gzip: number
  /** The files bundled, relative to the project. */
  inputs: string[]
}

/**
 * The client the way an app's bundler would take it in: browser, ES module,
 * minified, dependencies included, licence comments kept; gzip level 9.
 */
export async function bundleClient(): Promise<ClientBundle> {
  // Licence comments stay where they are (`/*! … */` comments, which minifiers keep), as in the package.
  const result = await build({ ...SHARED, platform: 'browser', minify: true, write: false, metafile: true, legalComments: 'inline' })
  const out = result.outputFiles![0]!
  return {
    code: out.text,
    minified: out.contents.length,
    gzip: gzipSync(out.contents, { level: 9 }).length,
    inputs: Object.keys(result.metafile!.inputs),
  }
}

/** The opt-in entries that build on the client: `belfry/shared`, `belfry/desktop`. */
export const OPT_IN = ['shared', 'desktop'] as const
export type OptIn = (typeof OPT_IN)[number]

/**
 * An opt-in entry, `src/<entry>/index.ts`: the client (`belfry`) stays an
 * import for the app's bundler, which resolves it to the app's one copy.
 */
const optIn = (entry: OptIn): BuildOptions => ({
  entryPoints: [`${ROOT}src/${entry}/index.ts`],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  external: ['belfry'],
  logLevel: 'silent',
})

/** Writes the package's entry for `belfry/<entry>`: readable, one ES module. */
export async function buildOptInPackage(entry: OptIn, outfile = `${ROOT}dist/${entry}/index.js`): Promise<void> {
  await build({ ...optIn(entry), platform: 'neutral', outfile })
}

/** `belfry` and `belfry/<entry>` from their source, for a bundle that takes them in as an app would. */
const fromSource: EsbuildPlugin = {
  name: 'belfry-from-source',
  setup(b) {
    b.onResolve({ filter: /^belfry(\/\w+)?$/ }, ({ path }) => ({
      path: `${ROOT}src/${path.slice('belfry/'.length)}${path === 'belfry' ? '' : '/'}index.ts`,
    }))
  },
}

/**
 * The client with `belfry/<entry>`, the way an app that uses both bundles them
 * (as bundleClient, plus the entry): what the entry costs is this minus the
 * client alone.
 */
export async function bundleClientWith(entry: OptIn): Promise<ClientBundle> {
  const result = await build({
    ...SHARED,
    entryPoints: [],
    stdin: { contents: `export * from 'belfry'\nexport * from 'belfry/${entry}'\n`, resolveDir: ROOT, loader: 'ts' },
    plugins: [rwsEsbuild, fromSource],
    platform: 'browser',
    minify: true,
    write: false,
    metafile: true,
    legalComments: 'inline',
  })
  const out = result.outputFiles![0]!
  return {
    code: out.text,
    minified: out.contents.length,
    gzip: gzipSync(out.contents, { level: 9 }).length,
    inputs: Object.keys(result.metafile!.inputs),
  }
}

/**
 * belfry/react's entry, `src/react/index.ts`: React and the client (`belfry`)
 * stay imports for the app's bundler, so the entry never carries a copy of
 * either. (It imports only types from `belfry`, so the built entry imports
 * nothing from it.)
 */
const REACT: BuildOptions = {
  entryPoints: [`${ROOT}src/react/index.ts`],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  external: ['react', 'react/jsx-runtime', 'react-dom', 'belfry'],
  logLevel: 'silent',
}

/** Keeps `'use client'` the entry's first statement, should esbuild ever drop the directive while bundling. */
export const useClientFirst = (code: string): string => (/^["']use client["'];/.test(code) ? code : `'use client';\n${code}`)

/** Writes the package's belfry/react entry: readable, one ES module. */
export async function buildReactPackage(outfile = `${ROOT}dist/react/index.js`): Promise<void> {
  const result = await build({ ...REACT, platform: 'neutral', write: false })
  mkdirSync(dirname(outfile), { recursive: true })
  writeFileSync(outfile, useClientFirst(result.outputFiles![0]!.text))
}

/**
 * belfry/react the way an app's bundler would take it in, React left out: browser, minified; gzip level 9. An app's
 * bundler replaces `process.env.NODE_ENV` (React's own builds need it to): its production build (the default here,
 * the one the size limit holds) leaves out what only development builds run; `'development'` keeps it.
 */
export async function bundleReact(mode: 'production' | 'development' = 'production'): Promise<ClientBundle & { imports: string[] }> {
  const result = await build({
    ...REACT,
    platform: 'browser',
    minify: true,
    write: false,
    metafile: true,
    define: { 'process.env.NODE_ENV': JSON.stringify(mode) },
  })
  const code = useClientFirst(result.outputFiles![0]!.text)
  const bytes = Buffer.from(code)
  return {
    code,
    minified: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    inputs: Object.keys(result.metafile!.inputs),
    imports: Object.values(result.metafile!.outputs).flatMap((o) => o.imports.map((i) => i.path)),
  }
}
