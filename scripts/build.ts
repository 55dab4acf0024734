/**
 * `npm run build`: tsc emits the server, the protocol and every declaration;
 * then the client entry, `dist/index.js`, is replaced by one bundle that
 * carries reconnecting-websocket compiled from its source (see
 * client-bundle.ts). The client's per-file output is then unused and removed.
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { buildClientPackage } from './client-bundle.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))

execFileSync(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, '-p', `${ROOT}tsconfig.build.json`], { stdio: 'inherit' })
for (const f of readdirSync(`${ROOT}dist/client`)) if (/\.js(\.map)?$/.test(f)) rmSync(`${ROOT}dist/client/${f}`)
await buildClientPackage()
