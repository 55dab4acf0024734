/** scripts/pack.ts: the shipped markdown's links to files a package does not hold; the manifests' `engines`. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { unlink } from '../../scripts/pack.js'

const dir = mkdtempSync(join(tmpdir(), 'belfry-unlink-'))
mkdirSync(join(dir, 'docs'))
for (const file of ['CHANGELOG.md', 'docs/protocol.md']) writeFileSync(join(dir, file), '')
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('unlink', () => {
  // Regression: the packaged README linked to files neither package shipped (docs/demo.png, bench/chart.svg…).
  it('makes a link to a file the package lacks plain text, drops such an image, and keeps every other link', () => {
    const readme = [
      '# belfry',
      '',
      '![the demo](docs/demo.png)',
      '',
      'See [docs/protocol.md](docs/protocol.md#limits), [the changelog](CHANGELOG.md), [`bench/RESULTS.md`](bench/RESULTS.md),',
      '[Security](#security), [the site](https://example.com/x.md) and ![inline](chart.svg) here.',
      '',
    ].join('\n')
    expect(unlink(readme, dir, 'README.md')).toBe(
      [
        '# belfry',
        '',
        'See [docs/protocol.md](docs/protocol.md#limits), [the changelog](CHANGELOG.md), `bench/RESULTS.md`,',
        '[Security](#security), [the site](https://example.com/x.md) and  here.',
        '',
      ].join('\n'),
    )
    // Relative to the file that links: docs/protocol.md's `../CHANGELOG.md`.
    expect(unlink('[changes](../CHANGELOG.md) [gone](../CONTRIBUTING.md)', dir, 'docs/protocol.md')).toBe('[changes](../CHANGELOG.md) gone')
  })
})

describe('engines (package.json, which belfry-server ships as it is)', () => {
  /** npm's reading of a range. */
  const semver = createRequire(import.meta.url)('semver') as { satisfies(version: string, range: string): boolean }
  const { engines } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { engines: { node: string } }

  // The server calls URL.parse on every HTTP request (Node 20.18+ on the 20 line, 22.1+, never 21); README promises
  // require() of the ES module packages, unflagged from 20.19 and from 22.12. `>=20.19` admitted 21.x and 22.0–22.11,
  // where every request, /healthz too, answered 500.
  it('admits every Node that has what the packages use, and no other', () => {
    expect(readFileSync(new URL('../../src/server/http.ts', import.meta.url), 'utf8')).toContain('URL.parse(')
    for (const version of ['20.19.0', '20.20.2', '22.12.0', '24.0.0', '26.1.0'])
      expect(semver.satisfies(version, engines.node), `"${engines.node}" admits ${version}`).toBe(true)
    for (const version of ['20.18.3', '21.7.3', '22.0.0', '22.11.0'])
      expect(semver.satisfies(version, engines.node), `"${engines.node}" admits ${version}`).toBe(false)
  })
})
