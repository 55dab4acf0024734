import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'
import { rwsVite } from './scripts/client-bundle.js'

export default defineConfig({
  // The opt-in entries (belfry/shared) import the client as an app does, by its package name.
  resolve: { alias: [{ find: /^belfry$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) }] },
  // Tests run the client as it ships: reconnecting-websocket compiled from its source.
  plugins: [rwsVite()],
  test: {
    server: { deps: { inline: [/reconnecting-websocket/] } },
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], environment: 'node' },
      },
      {
        extends: true,
        // belfry/react: hooks and provider in a DOM (server rendering in files that ask for node).
        test: { name: 'react', include: ['test/react/**/*.test.{ts,tsx}'], environment: 'happy-dom' },
      },
      {
        extends: true,
        test: {
          name: 'types',
          include: [],
          typecheck: { enabled: true, only: true, include: ['test/types/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
        },
      },
      {
        extends: true,
        test: { name: 'integration', include: ['test/integration/**/*.test.ts'], testTimeout: 30_000, hookTimeout: 30_000 },
      },
      {
        extends: true,
        test: { name: 'chaos', include: ['test/chaos/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 30_000 },
      },
      {
        // Several belfry-server processes on PostgreSQL and Redis: heavy, so one file at a time.
        extends: true,
        test: {
          name: 'cluster',
          include: ['test/cluster/**/*.test.ts'],
          globalSetup: ['test/cluster/setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/e2e/build-demo.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
    ],
  },
})
