/**
 * Client sizes: each client bundled the way an app's bundler would (esbuild,
 * browser, ES module, minified, licence comments kept) and gzipped at level 9,
 * dependencies included. belfry is measured as it ships
 * (`scripts/client-bundle.ts`, the recipe of the size test).
 */
import { fileURLToPath, pathToFileURL } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'
import { bundleClient, bundleClientWith, bundleReact, rwsEsbuild } from '../scripts/client-bundle.js'
import { DESKTOP_SIZE_BUDGET_BYTES, REACT_SIZE_LIMIT_BYTES, SHARED_SIZE_BUDGET_BYTES } from './client-size.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))

export interface ClientSize {
  name: string
  what: string
  minified: number
  gzip: number
}

const OTHERS: { name: string; what: string; code: string; asBundled?: boolean }[] = [
  { name: 'socket.io-client', what: 'socket.io-client 4 (everything exported)', code: "export * from 'socket.io-client'" },
  { name: 'centrifuge', what: 'centrifuge (JSON build, everything exported)', code: "export * from 'centrifuge'" },
  {
    name: 'reconnecting-websocket + mitt',
    what: "belfry's two dependencies alone, as belfry bundles them: the floor under belfry's size",
    code: "export { default as ReconnectingWebSocket } from 'reconnecting-websocket'\nexport { default as mitt } from 'mitt'",
    asBundled: true,
  },
  {
    name: 'reconnecting-websocket (ES5 build)',
    what: 'the build its package points bundlers at, for comparison',
    code: "export { default } from 'reconnecting-websocket'",
  },
]

async function bundle(code: string, asBundled = false): Promise<{ minified: number; gzip: number }> {
  const result = await build({
    stdin: { contents: code, resolveDir: ROOT, loader: 'ts', sourcefile: 'entry.ts' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    plugins: asBundled ? [rwsEsbuild] : [],
    legalComments: 'inline',
    write: false,
    logLevel: 'silent',
  })
  const out = result.outputFiles[0]!.contents
  return { minified: out.length, gzip: gzipSync(out, { level: 9 }).length }
}

export async function clientSizes(): Promise<ClientSize[]> {
  const { minified, gzip } = await bundleClient()
  const sizes: ClientSize[] = [
    { name: 'belfry', what: 'src/index.ts as it ships (NotificationClient, everything exported)', minified, gzip },
  ]
  for (const e of OTHERS) sizes.push({ name: e.name, what: e.what, ...(await bundle(e.code, e.asBundled)) })
  return sizes
}

/**
 * belfry/react's entry as `npm test` measures it: as an app's production build takes it (`NODE_ENV=production`),
 * and, held to no limit, as its development build does. Not a client: not in the benchmark's table.
 */
export async function reactSizes(): Promise<ClientSize[]> {
  const production = await bundleReact()
  const development = await bundleReact('development')
  return [
    {
      name: 'belfry/react',
      what: `src/react/index.ts in a production build (NODE_ENV=production), React and the client left to the app (limit ${REACT_SIZE_LIMIT_BYTES} B)`,
      minified: production.minified,
      gzip: production.gzip,
    },
    {
      name: 'belfry/react (development build)',
      what: 'the same in a development build (NODE_ENV=development), with the checks of its props: held to no limit',
      minified: development.minified,
      gzip: development.gzip,
    },
  ]
}

/** The client with an opt-in entry, as an app that uses both bundles them. */
export async function optInSizes(): Promise<ClientSize[]> {
  const alone = (await bundleClient()).gzip
  const budgets = { shared: SHARED_SIZE_BUDGET_BYTES, desktop: DESKTOP_SIZE_BUDGET_BYTES }
  const sizes: ClientSize[] = []
  for (const [entry, budget] of Object.entries(budgets) as [keyof typeof budgets, number][]) {
    const { minified, gzip } = await bundleClientWith(entry)
    sizes.push({ name: `belfry with belfry/${entry}`, what: `+${gzip - alone} B over the client (budget ${budget} B)`, minified, gzip })
  }
  return sizes
}

/** `npm run size`: the table, on stdout. */
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const s of [...(await clientSizes()), ...(await optInSizes()), ...(await reactSizes())]) {
    process.stdout.write(
      `${s.name.padEnd(36)} ${String(s.gzip).padStart(6)} B min+gzip  ${String(s.minified).padStart(7)} B min   ${s.what}\n`,
    )
  }
}
