/**
 * README's "One socket for all of a user's tabs" says what belfry/shared adds
 * to the client in KB ("about N KB min + gzip to the client; `npm run size`").
 * That figure must be what `npm run size` measures now, to the tenth of a KB
 * (the README's KB is 1,024 B: "6.5 KB (6,656 B)"), as the byte figures of the
 * Size section already are (size.test.ts).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { bundleClient, bundleClientWith } from '../../scripts/client-bundle.js'

const ROOT = new URL('../../', import.meta.url).pathname

describe("README's KB figure of belfry/shared", () => {
  it('is what belfry/shared adds to the client now, rounded to 0.1 KB', async () => {
    const text = readFileSync(join(ROOT, 'README.md'), 'utf8').replace(/\s+/g, ' ')
    const match = /it adds about ([\d.]+) KB min \+ gzip to the client; `npm run size`/.exec(text)
    expect(match, 'the sentence of the One socket section').not.toBeNull()
    const client = (await bundleClient()).gzip
    const shared = (await bundleClientWith('shared')).gzip - client
    expect(Number(match![1])).toBe(Math.round((shared / 1024) * 10) / 10)
  }, 60_000)
})
