/**
 * The client as it ships. One recipe for the package build, the size test,
 * the benchmark's size table, the demo and the test runs.
 *
 * reconnecting-websocket publishes ES5 builds (classes, spreads and its event
 * classes down-levelled through helpers) beside the TypeScript source they are
 * compiled from. The client compiles that source for ES2022 instead: the same
 * code, smaller (`npm run bench` prints both in its client size table).
 */
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { type BuildOptions, build } from 'esbuild'

const ROOT = fileURLToPath(new URL('../', import.meta.url))

/** reconnecting-websocket's TypeScript source, as its package ships it. */
export const RWS_SOURCE = fileURLToPath(import.meta.resolve('reconnecting-websocket/reconnecting-websocket.ts'))

/** For Vite and Vitest: `resolve.alias` entries that put the source in place of the ES5 build. */
export const clientAlias = [{ find: /^reconnecting-websocket$/, replacement: RWS_SOURCE }]

const SHARED: BuildOptions = {
  entryPoints: [`${ROOT}src/index.ts`],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  alias: { 'reconnecting-websocket': RWS_SOURCE },
  logLevel: 'silent',
}

/** Writes the package's client entry, `dist/index.js`: readable, licence kept, mitt left to the app's bundler. */
export async function buildClientPackage(outfile = `${ROOT}dist/index.js`): Promise<void> {
  await build({ ...SHARED, outfile, platform: 'neutral', external: ['mitt'], sourcemap: true, legalComments: 'inline' })
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
  const result = await build({ ...SHARED, platform: 'browser', minify: true, write: false, metafile: true })
  const out = result.outputFiles![0]!
  return {
    code: out.text,
    minified: out.contents.length,
    gzip: gzipSync(out.contents, { level: 9 }).length,
    inputs: Object.keys(result.metafile!.inputs),
  }
}
