/**
 * The `#section` links of the markdown both packages ship lead to a heading
 * of the file they name. packaging.test.ts checks that a link's file is in
 * the tarball, not that its anchor exists: a link to an anchor that no
 * heading makes goes nowhere (on GitHub, npm's page and in an editor alike).
 *
 * Anchors are GitHub's: the heading lowercased, punctuation dropped, spaces
 * made hyphens, a repeated one suffixed -1, -2, ….
 */
import { readFileSync } from 'node:fs'
import { dirname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { DOCS } from '../../scripts/pack.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const MARKDOWN = DOCS.filter((f) => f.endsWith('.md'))

/** A file's text without its fenced code blocks (a `# comment` in a shell block is no heading). */
const prose = (file: string) => readFileSync(join(ROOT, file), 'utf8').replace(/^```[\s\S]*?^```/gm, '')

const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-')

function anchors(file: string): Set<string> {
  const seen = new Map<string, number>()
  const out = new Set<string>()
  for (const [, heading] of prose(file).matchAll(/^#{1,6} (.+)$/gm)) {
    const base = slug(heading!)
    const n = seen.get(base)
    seen.set(base, n === undefined ? 0 : n + 1)
    out.add(n === undefined ? base : `${base}-${n + 1}`)
  }
  return out
}

describe('section links in the shipped markdown', () => {
  it('the slugs are GitHub’s (the check can pass)', () => {
    expect(anchors('README.md')).toContain('one-socket-for-all-of-a-users-tabs')
    expect(anchors('docs/protocol.md')).toContain('belfrys-client-against-the-articles-server')
    expect(anchors('docs/protocol.md')).toContain('client--server-frames')
  })

  // docs/protocol.md links to #retention (in auth_success's row) and twice to #large-audiences
  // (Commit before send, the HTTP API's 201), but both are bold paragraphs under
  // "Delivery guarantee", not headings: the links lead nowhere.
  it('each lead to a heading of the file they name', () => {
    const broken: string[] = []
    for (const file of MARKDOWN) {
      for (const [, target, anchor] of prose(file).matchAll(/\]\(([^)#\s]*)#([^)\s]+)\)/g)) {
        const to = target ? normalize(join(dirname(file), target)) : file
        if (!MARKDOWN.includes(to)) continue // a file neither package ships: packaging.test.ts's concern
        if (!anchors(to).has(anchor!)) broken.push(`${file} → ${to}#${anchor}`)
      }
    }
    expect(broken).toEqual([])
  })
})
