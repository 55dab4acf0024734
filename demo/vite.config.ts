import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'
import { rwsVite } from '../scripts/client-bundle.js'

/**
 * Builds the demo pages into dist/demo, which `npm start` serves: index.html
 * and react.html (the same page on belfry/react). They import `belfry` and
 * its entries (`belfry/shared`, `belfry/desktop`, `belfry/react`) like any app would; the aliases point them at the source,
 * built the way the package builds it.
 *
 *   npx vite build --config demo/vite.config.ts
 *   npx vite --config demo/vite.config.ts   (hot reload; proxies to a server on :3000)
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  resolve: {
    alias: [
      { find: /^belfry$/, replacement: fileURLToPath(new URL('../src/index.ts', import.meta.url)) },
      { find: /^belfry\/react$/, replacement: fileURLToPath(new URL('../src/react/index.ts', import.meta.url)) },
      { find: /^belfry\/shared$/, replacement: fileURLToPath(new URL('../src/shared/index.ts', import.meta.url)) },
      { find: /^belfry\/desktop$/, replacement: fileURLToPath(new URL('../src/desktop/index.ts', import.meta.url)) },
    ],
  },
  plugins: [rwsVite()],
  build: {
    outDir: '../dist/demo',
    emptyOutDir: true,
    target: 'es2022',
    // The licences of every package bundled, in one file beside the page: mitt's code carries no notice of its own.
    license: { fileName: 'licenses.md' },
    // Two pages: index.html (plain DOM) and react.html (belfry/react; Vite compiles its TSX, no plugin needed).
    rollupOptions: {
      input: {
        index: fileURLToPath(new URL('index.html', import.meta.url)),
        react: fileURLToPath(new URL('react.html', import.meta.url)),
      },
      // Minified, but with the licence notices of the code it bundles (React's `@license`, reconnecting-websocket's `/*!`):
      // Vite strips legal comments when it minifies, and belfry-server ships this page.
      output: { comments: { legal: true } },
      // belfry/react starts with 'use client', for server components; a client-only bundle has no use for it.
      onwarn(warning, warn) {
        if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning)
      },
    },
  },
  server: {
    // As README's example: `changeOrigin: false` keeps the page's Host, which dev mode's origin fence compares its
    // Origin with (a plain string target rewrites it, and "Drop connection", a POST, got 403).
    proxy: {
      '/api': { target: 'http://127.0.0.1:3000', changeOrigin: false },
      '/ws': { target: 'http://127.0.0.1:3000', changeOrigin: false, ws: true },
    },
  },
})
