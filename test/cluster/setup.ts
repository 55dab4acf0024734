/**
 * Global setup of the `cluster` project: the services the files share, and
 * the programs they run as processes.
 *
 * - One PostgreSQL and one Redis for the files that do not break them: each
 *   cluster gets its own database on that PostgreSQL, and the files run one
 *   at a time (`fileParallelism: false`), each stopping its processes before
 *   the next starts, so they never share Redis's channel at once. A file that
 *   stops or kills a service starts its own.
 * - belfry-server's CLI (src/server/cli.ts) and the sequence test's publisher,
 *   bundled from source once by esbuild (their packages stay imports of
 *   node_modules): a process then starts in a fraction of the time `node
 *   --import tsx` takes to compile the same files again, and a file starts
 *   up to seven.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import type { TestProject } from 'vitest/node'
import { startPostgres, startRedis, stopAllServices } from '../helpers/services.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

export interface ClusterContext {
  /** The shared PostgreSQL (postgres://…/postgres). */
  pgUrl: string
  /** The shared Redis. */
  redisUrl: string
  /** The bundled CLI: `node <cli>` runs belfry-server. */
  cli: string
  /** The bundled publisher of sequences.test.ts. */
  publisher: string
}

declare module 'vitest' {
  export interface ProvidedContext {
    cluster: ClusterContext
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Inside node_modules, so that the bundles' imports of packages resolve from there.
  const cache = join(ROOT, 'node_modules', '.cache')
  mkdirSync(cache, { recursive: true })
  const dir = mkdtempSync(join(cache, 'belfry-cluster-'))
  try {
    await build({
      entryPoints: { cli: join(ROOT, 'src/server/cli.ts'), publisher: join(ROOT, 'test/cluster/publisher.ts') },
      outdir: dir,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      packages: 'external',
      platform: 'node',
      format: 'esm',
      target: 'node20',
      logLevel: 'warning',
    })
    const [pg, redis] = await Promise.all([startPostgres(), startRedis()])
    project.provide('cluster', { pgUrl: pg.url, redisUrl: redis.url, cli: join(dir, 'cli.mjs'), publisher: join(dir, 'publisher.mjs') })
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    await stopAllServices()
    throw error
  }
  return async () => {
    rmSync(dir, { recursive: true, force: true })
    await stopAllServices()
  }
}
