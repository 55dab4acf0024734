/**
 * Client sizes: each client bundled the way an app's bundler would (esbuild,
 * browser, ES module, minified) and gzipped at level 9, dependencies included.
 * The same recipe as the size test in test/unit/size.test.ts, licence comments
 * left out (a production build ships them beside the bundle).
 */
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'

const ROOT = fileURLToPath(new URL('../', import.meta.url))

export interface ClientSize {
  name: string
  what: string
  minified: number
  gzip: number
}

const ENTRIES: { name: string; what: string; code: string }[] = [
  { name: 'belfry', what: 'src/index.ts (NotificationClient, everything exported)', code: "export * from './src/index.ts'" },
  { name: 'socket.io-client', what: 'socket.io-client 4 (everything exported)', code: "export * from 'socket.io-client'" },
  { name: 'centrifuge', what: 'centrifuge (JSON build, everything exported)', code: "export * from 'centrifuge'" },
  {
    name: 'reconnecting-websocket + mitt',
    what: "belfry's two dependencies alone: the floor under belfry's size",
    code: "export { default as ReconnectingWebSocket } from 'reconnecting-websocket'\nexport { default as mitt } from 'mitt'",
  },
]

async function bundle(code: string): Promise<{ minified: number; gzip: number }> {
  const result = await build({
    stdin: { contents: code, resolveDir: ROOT, loader: 'ts', sourcefile: 'entry.ts' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    legalComments: 'none',
    logLevel: 'silent',
  })
  const out = result.outputFiles[0]!.contents
  return { minified: out.length, gzip: gzipSync(out, { level: 9 }).length }
}

export async function clientSizes(): Promise<ClientSize[]> {
  const sizes: ClientSize[] = []
  for (const e of ENTRIES) sizes.push({ name: e.name, what: e.what, ...(await bundle(e.code)) })
  return sizes
}
