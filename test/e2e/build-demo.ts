import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** vitest global setup of the e2e project: builds the demo page once. */
export default function setup(): void {
  const root = fileURLToPath(new URL('../../', import.meta.url))
  execFileSync(process.execPath, ['node_modules/vite/bin/vite.js', 'build', '--config', 'demo/vite.config.ts', '--logLevel', 'warn'], {
    cwd: root,
    // As `npm start` builds it: vitest sets NODE_ENV=test, which would bundle React's development build.
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: 'inherit',
  })
}
