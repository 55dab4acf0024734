import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'
import { rwsVite } from '../scripts/client-bundle.js'

/**
 * Builds the demo page into dist/demo, which `npm start` serves. The page
 * imports `belfry` like any app would; the alias points it at the source, built
 * the way the package builds it.
 *
 *   npx vite build --config demo/vite.config.ts
 *   npx vite --config demo/vite.config.ts   (hot reload; proxies to a server on :3000)
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  resolve: {
    alias: [{ find: /^belfry$/, replacement: fileURLToPath(new URL('../src/index.ts', import.meta.url)) }],
  },
  plugins: [rwsVite()],
  build: {
    outDir: '../dist/demo',
    emptyOutDir: true,
    target: 'es2022',
  },
  server: {
    proxy: {
      '/api': 'http://localhost:3000',
      '/ws': { target: 'http://localhost:3000', ws: true },
    },
  },
})
