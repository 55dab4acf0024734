/**
 * `npm run pack`: builds, then makes the two packages this repository ships
 * and packs each into a tarball in dist/packages/:
 *
 * - `belfry`: the client. One ES module (reconnecting-websocket bundled in),
 *   its declarations, and mitt as its only dependency: no native module, no
 *   Node-only dependency, no install script. And two opt-in entries, one
 *   module each with its declarations: `belfry/react`, for React 18 or 19
 *   (an optional peer), `belfry/shared`, one socket for a user's tabs, and
 *   `belfry/desktop`, desktop notifications.
 * - `belfry-server`: the server, its CLI (`belfry-server`), the demo page it
 *   serves in dev mode, its store and broker dependencies, and prom-client
 *   for its metrics.
 *
 * Each package.json is written here, its versions taken from the root's: the
 * root package.json stays the one place dependencies are declared. Each entry
 * of an exports map has `default` beside `import`, so that `require()` (which
 * loads ES modules from Node 20.19) finds it too.
 *
 * Both ship the README and the documents it links to ({@link DOCS}); a link in
 * them to a file the package does not ship (an image, say) is rewritten to
 * plain text, an image dropped (see {@link unlink}): the packages have no
 * repository URL that such links could resolve against.
 */
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build } from './build.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))

interface RootManifest {
  version: string
  license: string
  description: string
  dependencies: Record<string, string>
  engines: Record<string, string>
}

const root = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as RootManifest

/** The root's version range of each named dependency. */
const pick = (names: readonly string[]) =>
  Object.fromEntries(names.map((n) => [n, root.dependencies[n] ?? fail(`no dependency ${n} in package.json`)]))
const fail = (message: string): never => {
  throw new Error(message)
}

/** An exports entry: its declarations, and the module for `import` and for everything else (`require`). */
const entry = (dir: string) => ({ types: `./${dir}/index.d.ts`, import: `./${dir}/index.js`, default: `./${dir}/index.js` })

/** The documents both packages ship beside the README, which links to them (at the same paths as here). */
export const DOCS = [
  'README.md',
  'LICENSE',
  'CHANGELOG.md',
  'CONTRIBUTING.md',
  'docs/protocol.md',
  'docs/architecture.md',
  'bench/RESULTS.md',
  'bench/chart.svg',
]

/** What goes into each package: files copied from the build, and its manifest. */
export const PACKAGES = {
  belfry: {
    // Declarations only from the folders: the code is all in dist/index.js (and dist/{react,shared,desktop}/index.js).
    files: ['dist/index.js', 'dist/index.d.ts', 'dist/client', 'dist/protocol', 'dist/react', 'dist/shared', 'dist/desktop'],
    only: (_from: string, to: string) => !/\.(js|map)$/.test(to) || /\/dist\/((react|shared|desktop)\/)?index\.js$/.test(to),
    // Packages whose code the build puts in dist/index.js: their licences go with it (THIRD_PARTY_NOTICES.md).
    bundled: ['reconnecting-websocket'],
    manifest: {
      name: 'belfry',
      description: 'Real-time notifications for web apps: a typed WebSocket client with durable resume and exactly-once delivery.',
      sideEffects: false,
      exports: {
        '.': entry('dist'),
        './react': entry('dist/react'),
        './shared': entry('dist/shared'),
        './desktop': entry('dist/desktop'),
        './package.json': './package.json',
      },
      dependencies: pick(['mitt']),
      // belfry/react's; an app without React installs none of it.
      peerDependencies: { react: '^18 || ^19' },
      peerDependenciesMeta: { react: { optional: true } },
    },
  },
  'belfry-server': {
    files: ['dist/server', 'dist/protocol', 'dist/demo', 'bin/belfry-server.js'],
    only: (_from: string, _to: string) => true,
    manifest: {
      name: 'belfry-server',
      description: "belfry's notification server: authenticated WebSocket delivery from a durable inbox (SQLite).",
      exports: { '.': entry('dist/server'), './package.json': './package.json' },
      bin: { 'belfry-server': './bin/belfry-server.js' },
      engines: root.engines,
      dependencies: pick(['better-sqlite3', 'fast-jwt', 'ioredis', 'pg', 'pino', 'prom-client', 'ws']),
    },
  },
} as const

/**
 * Builds into `out` (dist/ by default), writes `out`/packages/<name>/ for each
 * package and packs it there; returns the tarballs' paths.
 */
export async function pack(out = `${ROOT}dist/`): Promise<Record<keyof typeof PACKAGES, string>> {
  await build(out)
  const PACKAGES_DIR = `${out}packages/`
  const tarballs: Record<string, string> = {}
  for (const [name, { files, only, manifest, ...rest }] of Object.entries(PACKAGES)) {
    const dir = `${PACKAGES_DIR}${name}/`
    mkdirSync(dir, { recursive: true })
    // Built files come from `out`, the bin from the repository.
    for (const file of files) {
      const from = file.startsWith('dist/') ? `${out}${file.slice('dist/'.length)}` : `${ROOT}${file}`
      cpSync(from, `${dir}${file}`, { recursive: true, filter: only })
    }
    for (const file of DOCS) cpSync(`${ROOT}${file}`, `${dir}${file}`)
    if ('bundled' in rest) writeFileSync(`${dir}THIRD_PARTY_NOTICES.md`, notices(rest.bundled))
    for (const file of DOCS.filter((f) => f.endsWith('.md')))
      writeFileSync(`${dir}${file}`, unlink(readFileSync(`${dir}${file}`, 'utf8'), dir, file))
    const full = {
      ...manifest,
      version: root.version,
      type: 'module',
      license: root.license,
      // What was copied above: the top-level files and folders.
      files: readdirSync(dir)
        .filter((f) => f !== 'package.json')
        .sort(),
    }
    writeFileSync(`${dir}package.json`, `${JSON.stringify(full, null, 2)}\n`)
    const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', PACKAGES_DIR], { cwd: dir, encoding: 'utf8' }).trim()
    tarballs[name] = `${PACKAGES_DIR}${packed.split('\n').at(-1)}`
  }
  return tarballs as Record<keyof typeof PACKAGES, string>
}

/** The licence of each package in `names`, as it ships in node_modules: MIT asks that it go with every copy. */
function notices(names: readonly string[]): string {
  const parts = names.map((name) => {
    const { version } = JSON.parse(readFileSync(`${ROOT}node_modules/${name}/package.json`, 'utf8')) as { version: string }
    return `## ${name} ${version}\n\n${readFileSync(`${ROOT}node_modules/${name}/LICENSE`, 'utf8').trim()}\n`
  })
  return `# Third-party notices\n\nThe client's bundle (dist/index.js) carries the code of:\n\n${parts.join('\n')}`
}

/**
 * `markdown` (the file `file` of the package in `dir`) with each relative link
 * to a file the package does not hold made plain text, and each such image
 * dropped, with its line if it is alone on it. Links to a section (`#…`) and
 * absolute URLs are kept.
 */
export function unlink(markdown: string, dir: string, file: string): string {
  const missing = (target: string) => {
    const path = target.split('#')[0]!
    return path !== '' && !/^[a-z][a-z+.-]*:/i.test(path) && !existsSync(join(dir, dirname(file), path))
  }
  return markdown
    .replace(/^!\[[^\]]*\]\(([^)\s]+)\)[ \t]*\n(\n)?/gm, (line, target: string) => (missing(target) ? '' : line))
    .replace(/(!?)\[([^\]]*)\]\(([^)\s]+)\)/g, (link, image: string, text: string, target: string) =>
      missing(target) ? (image ? '' : text) : link,
    )
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const tarballs = await pack()
  for (const [name, path] of Object.entries(tarballs)) process.stdout.write(`${name}: ${path}\n`)
}
