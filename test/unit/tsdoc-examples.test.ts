/**
 * The @example of each public entry's TSDoc (what an editor shows on hover,
 * and what the packages' .d.ts carry) compiles as written, as the README's
 * examples do (readme.test.ts), with the names an example leaves to the app
 * declared: copied as written, an example must neither fail under strict nor
 * throw (belfry/desktop's `onClick` gets `undefined` for a summary).
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { compileInMemory } from '../helpers/compile.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/**
 * The entries whose example is a module of its own, imports included (a member's example, and
 * belfry/react's two-line JSX sketch, are fragments that lean on the text around them).
 */
const FILES = ['src/index.ts', 'src/shared/index.ts', 'src/desktop/index.ts', 'src/server/index.ts']

/** What the examples take from the app around them. */
const APP = `
import type { NotificationClient as Client } from 'belfry'
declare global {
  function toast(title: string, detail?: string): void
  function fetchToken(): Promise<string>
  const url: string
  const token: string
  const client: Client
  const enableButton: HTMLButtonElement
  const router: { push(path: string): void }
}
`

function examples(file: string): { name: string; code: string }[] {
  const text = readFileSync(`${ROOT}${file}`, 'utf8')
  return [...text.matchAll(/@example\n((?: \*(?: .*)?\n)+?) \*\//g)].map((m, i) => ({
    name: `${file.replace(/[/.]/g, '_')}_${i}`,
    code: `${m[1]!.replace(/^ \* ?/gm, '')}\nexport {}\n`,
  }))
}

function compile(blocks: { name: string; code: string }[]): string[] {
  const files = new Map<string, string>([[`${ROOT}tsdoc-app.ts`, APP]])
  for (const { name, code } of blocks) files.set(`${ROOT}tsdoc-${name}.tsx`, code)
  return compileInMemory(ROOT, files)
}

describe('TSDoc examples of the public entries', () => {
  const blocks = FILES.flatMap(examples)

  it('are found', () => {
    expect(blocks.map((b) => b.name)).toContain('src_desktop_index_ts_0')
    expect(blocks.length).toBeGreaterThanOrEqual(FILES.length)
  })

  it('compile as written', () => {
    expect(compile(blocks)).toEqual([])
  }, 60_000)
})
