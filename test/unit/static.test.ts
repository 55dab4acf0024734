import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer, type RequestListener, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { serveDemo } from '../../src/server/static.js'

// The served directory, and a file beside it that must never be served.
const dir = mkdtempSync(join(tmpdir(), 'belfry-static-'))
const root = join(dir, 'demo')
const server = createServer(serveDemo(root))
let port = 0

beforeAll(async () => {
  mkdirSync(root)
  writeFileSync(join(root, 'index.html'), '<h1>demo</h1>')
  writeFileSync(join(dir, 'secret.txt'), 'secret')
  port = await listen(server)
})
afterAll(() => {
  server.close()
  rmSync(dir, { recursive: true, force: true })
})

async function listen(s: ReturnType<typeof createServer>): Promise<number> {
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  return (s.address() as AddressInfo).port
}

/** A raw GET, so that the path reaches the server as written. */
function get(path: string, to = port): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port: to, path }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
      .on('error', reject)
      .end()
  })
}

/** Ways to write `../secret.txt` into a request path, encoded or not. */
const OUTSIDE = ['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/%2e%2e%2fsecret.txt', '/%2f..%2fsecret.txt']
/** With Windows path rules a backslash separates too, and `//..` or `/\..` starts a UNC root. */
const OUTSIDE_WIN32 = [...OUTSIDE, '/%2f..%2f..%2fsecret.txt', '/%5c..%5csecret.txt', '/%5c..%5c..%5csecret.txt', '/..%5csecret.txt']

describe('the demo page files (dev mode)', () => {
  // With POSIX paths these never reach the directory guard: URL parsing removes dot segments, and
  // `normalize` of the decoded path (always absolute) cannot climb above `/`. The test covers that
  // whole chain; the guard itself is tested with Windows path rules below.
  it('serves index.html for /, and nothing outside its directory however the path is written', async () => {
    expect(await get('/')).toEqual({ status: 200, body: '<h1>demo</h1>' })
    for (const path of OUTSIDE) expect({ path, ...(await get(path)) }).toMatchObject({ path, status: 404 })
  })

  it('does not follow a symbolic link out of its directory; one within it is served', async () => {
    symlinkSync(join(dir, 'secret.txt'), join(root, 'out.txt'))
    symlinkSync(join(root, 'index.html'), join(root, 'in.html'))
    expect(await get('/out.txt')).toMatchObject({ status: 404 })
    expect(await get('/in.html')).toEqual({ status: 200, body: '<h1>demo</h1>' })
  })

  // Regression: its 405 said `Allow: GET`, leaving out the HEAD it serves.
  it('serves HEAD, and its 405 lists HEAD in Allow', async () => {
    expect((await fetch(`http://127.0.0.1:${port}/`, { method: 'HEAD' })).status).toBe(200)
    const put = await fetch(`http://127.0.0.1:${port}/`, { method: 'PUT' })
    expect([put.status, put.headers.get('allow')]).toEqual([405, 'GET, HEAD'])
  })

  it('answers a malformed percent escape with 400, not 500', async () => {
    expect(await get('/%E0%A4%A')).toEqual({ status: 400, body: 'bad path' })
  })

  // Regression: the file server sent no X-Content-Type-Options, so a file of unknown type could be sniffed into HTML.
  it('sends nosniff on its answers, so an unknown type is not sniffed into HTML', async () => {
    writeFileSync(join(root, 'upload.bin'), '<html><script>alert(1)</script></html>')
    for (const path of ['/upload.bin', '/', '/missing.txt', '/%E0%A4%A']) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`)
      await res.arrayBuffer()
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff')
    }
  })

  it('serves the licences beside the page as text, readable in a browser tab', async () => {
    writeFileSync(join(root, 'licenses.md'), '# Licenses')
    const res = await fetch(`http://127.0.0.1:${port}/licenses.md`)
    expect(await res.text()).toBe('# Licenses')
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8')
  })

  // The dev server runs for days: a download the browser abandons (a reload, a closed tab) must not leave its file open.
  it.runIf(process.platform === 'linux')('closes the file of a response whose client went away before reading it all', async () => {
    // Larger than the socket buffers take at once: the file is still being read when the client goes.
    const file = join(root, 'bundle.js')
    writeFileSync(file, Buffer.alloc(8 * 1024 * 1024, 'a'))
    for (let i = 0; i < 10; i++) {
      await new Promise<void>((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: '/bundle.js' }, (res) => {
          res.once('data', () => {
            req.destroy()
            resolve()
          })
        })
        req.on('error', () => {})
        req.end()
      })
    }
    await expect.poll(() => openOn(file), { timeout: 3000 }).toBe(0)
  })
})

/** This process's file descriptors open on `file` (Linux: /proc/self/fd). */
function openOn(file: string): number {
  let n = 0
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === file) n++
    } catch {} // closed meanwhile
  }
  return n
}

describe('the demo page files, with Windows path rules', () => {
  // Under win32 rules the guard is what stops them: a decoded `//..` or `/\..` normalises to a UNC
  // root (`\\..\secret.txt\`), and `join` then resolves its `..` against the served directory.
  // node:path is swapped for path.win32 and node:fs for files in memory under C:\srv.
  const files = new Map([
    ['C:\\srv\\demo\\index.html', '<h1>demo</h1>'],
    ['C:\\srv\\secret.txt', 'secret'],
    ['C:\\secret.txt', 'secret'],
  ])
  let win: ReturnType<typeof createServer> | undefined
  afterEach(() => {
    win?.close()
    vi.doUnmock('node:path')
    vi.doUnmock('node:fs')
    vi.resetModules()
  })

  async function winServer(): Promise<number> {
    vi.resetModules()
    vi.doMock('node:path', async () => (await vi.importActual<typeof import('node:path')>('node:path')).win32)
    vi.doMock('node:fs', () => ({
      existsSync: (p: string) => files.has(p) || [...files.keys()].some((f) => f.startsWith(`${p}\\`)),
      statSync: (p: string) => ({ isDirectory: () => !files.has(p) }),
      realpathSync: (p: string) => p,
      createReadStream: (p: string) => Readable.from([files.get(p) ?? '']),
    }))
    const { serveDemo: serveWin } = await import('../../src/server/static.js')
    win = createServer(serveWin('C:\\srv\\demo') as RequestListener)
    return listen(win)
  }

  it('serves index.html for /, and nothing outside its directory however the path is written', async () => {
    const to = await winServer()
    expect(await get('/', to)).toEqual({ status: 200, body: '<h1>demo</h1>' })
    for (const path of OUTSIDE_WIN32) expect({ path, ...(await get(path, to)) }).toMatchObject({ path, status: 404 })
  })
})
