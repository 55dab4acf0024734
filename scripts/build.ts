/**
 * `npm run build`: tsc emits the server, the protocol and every declaration
 * into dist/; the client entry, `dist/index.js`, is then replaced by one
 * bundle that carries reconnecting-websocket compiled from its source (see
 * client-bundle.ts), and the client's per-file output is removed (and
 * belfry/react's, belfry/shared's and belfry/desktop's, each for its own bundle,
 * `dist/<entry>/index.js`). Then the demo page is built into dist/demo (the server package serves it in dev mode).
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, rmSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { buildClientPackage, buildOptInPackage, buildReactPackage, OPT_IN } from './client-bundle.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))

/** Builds everything the packages are made of, into `out` (dist/ by default). */
export async function build(out = `${ROOT}dist/`): Promise<void> {
  rmSync(out, { recursive: true, force: true })
  // A production build, whoever runs it (vitest sets NODE_ENV=test, which would give the demo page React's development build).
  const env = { ...process.env, NODE_ENV: 'production' }
  const run = (script: string, args: string[]) =>
    execFileSync(process.execPath, [`${ROOT}node_modules/${script}`, ...args], { cwd: ROOT, stdio: 'inherit', env })
  run('typescript/bin/tsc', ['-p', `${ROOT}tsconfig.build.json`, '--outDir', out])
  for (const f of readdirSync(`${out}client`)) if (f.endsWith('.js')) rmSync(`${out}client/${f}`)
  await buildClientPackage(`${out}index.js`)
  // belfry/react likewise: one module, dist/react/index.js, beside the declarations.
  for (const f of readdirSync(`${out}react`)) if (f.endsWith('.js')) rmSync(`${out}react/${f}`)
  await buildReactPackage(`${out}react/index.js`)
  // belfry/shared and belfry/desktop likewise.
  for (const entry of OPT_IN) {
    for (const f of readdirSync(`${out}${entry}`)) if (f.endsWith('.js')) rmSync(`${out}${entry}/${f}`)
    await buildOptInPackage(entry, `${out}${entry}/index.js`)
  }
  run('vite/bin/vite.js', ['build', '--config', 'demo/vite.config.ts', '--logLevel', 'warn', '--outDir', `${out}demo`, '--emptyOutDir'])
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await build()
