/**
 * The README's TypeScript examples compile as written, under the project's
 * strict settings (strict, exactOptionalPropertyTypes, noUncheckedIndexedAccess):
 * each ```ts and ```tsx block is type-checked as a module of its own, with
 * `belfry`, `belfry/react` and `belfry-server` resolved to the source. The few names the examples leave to
 * the app (a toast function, a token fetcher) are declared here.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { compileInMemory } from '../helpers/compile.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

const APP = `
declare function toast(title: string, detail?: string): void
declare function badge(text: string): void
declare function bell(count: number): void
declare function fetchToken(): Promise<string>
declare function openInbox(id: string): void
`

/** A code block: its text, and `tsx` for a ```tsx block. */
interface Block {
  code: string
  tsx?: boolean
}

function compile(blocks: readonly Block[]): string[] {
  const files = new Map<string, string>([[`${ROOT}readme-app.d.ts`, APP]])
  for (const [i, { code, tsx }] of blocks.entries()) files.set(`${ROOT}readme-${i + 1}.${tsx ? 'tsx' : 'ts'}`, code)
  return compileInMemory(ROOT, files)
}

describe('README examples', () => {
  const readme = readFileSync(`${ROOT}README.md`, 'utf8')
  const blocks = [...readme.matchAll(/```(tsx?)\n([\s\S]*?)```/g)].map((m) => ({ code: m[2]!, tsx: m[1] === 'tsx' }))

  it('compile as written', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(5)
    expect(blocks.some((b) => b.tsx)).toBe(true) // the React example
    expect(compile(blocks)).toEqual([])
  }, 30_000)

  it('would show an example that does not compile (the check can fail)', () => {
    const broken = compile([
      { code: "import { NotificationClient } from 'belfry'\nnew NotificationClient({ url: 'ws://x', token: 42 })\n" },
      { code: "import { useUnreadCount } from 'belfry/react'\nexport const Bell = () => <b>{useUnreadCount().toFixed}</b>\n", tsx: true },
    ])
    expect(broken.join('\n')).toMatch(/readme-1\.ts:2: .*number/)
    expect(broken.join('\n')).toMatch(/readme-2\.tsx:2: /)
  }, 30_000)
})
