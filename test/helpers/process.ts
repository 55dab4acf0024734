import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

export interface ServerProcess {
  child: ChildProcess
  url: string
  wsUrl: string
  /** Everything the process wrote to stderr. */
  stderr(): string
}

/** tsx's loader and the CLI by absolute paths: a server may run in a directory of its own (its default files). */
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href
const CLI = join(ROOT, 'src/server/cli.ts')

/** Runs `belfry-server` (from source) as a child process, in `cwd` (the repository's root by default), and waits for its URL. */
export async function spawnServer(env: Record<string, string>, args: string[] = [], cwd = ROOT): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], {
    cwd,
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString()
  })
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /belfry (?:server|demo): (http:\/\/\S+?)\/?\s*$/m.exec(out)
      if (m?.[1]) resolve(m[1])
    })
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${err}`)))
  })
  return { child, url, wsUrl: `${url.replace('http', 'ws')}/ws`, stderr: () => err }
}

/** Runs the CLI and resolves with its exit code and stderr (for start-up refusals). */
export function runCli(env: Record<string, string>, args: string[] = []): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/cli.ts', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', PORT: '0', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    child.once('exit', (code) => resolve({ code, stderr }))
  })
}
