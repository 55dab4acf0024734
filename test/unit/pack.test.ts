/** scripts/pack.ts's rewriting of the shipped markdown: links to files a package does not hold. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
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
