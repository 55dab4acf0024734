import { createReadStream, existsSync, realpathSync, statSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { extname, join, normalize, resolve, sep } from 'node:path'
import { pipeline } from 'node:stream'
import { fileURLToPath } from 'node:url'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  // As plain text: browsers show it in a tab, where text/markdown is a download.
  '.md': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.ico': 'image/x-icon',
}

/** Where `vite build` puts the demo page. */
export const DEMO_DIR = fileURLToPath(new URL('../../dist/demo/', import.meta.url))

const PLACEHOLDER = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>belfry</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; padding: 0 1rem">
<h1>belfry is running</h1>
<p>The demo page has not been built yet. The server is up: WebSocket at <code>/ws</code>,
publish API at <code>POST /api/notifications</code>, health at <code>/healthz</code>.</p>
</body></html>`

/** `file` is `dir` or in it. */
const within = (file: string, dir: string): boolean => file === dir || file.startsWith(dir + sep)

/** Serves the built demo page from `root`, or a placeholder page while it is not built. */
export function serveDemo(root = DEMO_DIR): (req: IncomingMessage, res: ServerResponse) => void {
  const base = resolve(root)
  return (req, res) => {
    // Every answer: a file of unknown type (served as application/octet-stream) is never sniffed into HTML; and no
    // page of another origin frames the demo (which signs in as any user it is given: every button a click-jack).
    res.setHeader('x-content-type-options', 'nosniff')
    res.setHeader('x-frame-options', 'DENY')
    res.setHeader('content-security-policy', "frame-ancestors 'none'")
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end()
      return
    }
    let path: string
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname)
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('bad path')
      return
    }
    let file = resolve(join(base, normalize(path)))
    if (!within(file, base)) {
      res.writeHead(404).end()
      return
    }
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html')
    // A symbolic link may point out of the directory: what is served is where the file really is.
    if (existsSync(file) && !within(realpathSync(file), realpathSync(base))) {
      res.writeHead(404).end()
      return
    }
    if (!existsSync(file)) {
      if (path === '/' || path === '/index.html') {
        res.writeHead(200, { 'content-type': TYPES['.html']! }).end(PLACEHOLDER)
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
      }
      return
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' })
    if (req.method === 'HEAD') res.end()
    // pipeline() destroys each side with the other: a download the client abandons closes its file.
    else pipeline(createReadStream(file), res, () => {})
  }
}
