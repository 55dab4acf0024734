/** `belfry-server admin …`: the admin API of a running server, from a shell. */

import { BEARER_KEY_RULE, decimal, isBearerKey, keyShape } from './config.js'
import { redact, redactUrl } from './redact.js'

const ADMIN_USAGE = `Usage: belfry-server admin <command> [options]

Commands:
  user <id>                 a user's counters: latestSeq, ackedSeq, unreadCount,
                            floor (the highest seq retention removed) and
                            connections (to the server answering)
  prune [--days N] [--max-per-user N]
                            runs a retention pass now, with these limits or else
                            the server's (BELFRY_RETENTION_*), and prints what it removed
  unsubscribe <id> <topic>...
                            ends the user's subscriptions to these topics now (a
                            grant your app revoked; else it ends at the user's next auth)

Options:
  --url URL                 the server (default: BELFRY_URL, else http://localhost:$PORT or :3000)
  -h, --help                this text
  --                        the end of options: an id or topic that starts with '-' goes after it
                            (user -- -x); a negative number (user -1) needs none

The API key is read from BELFRY_API_KEY. The answer is printed as JSON.
`

/** A mistake in the command line: the usage follows the message. */
class UsageError extends Error {}

/** Runs `belfry-server admin <args>`; resolves with the exit code (0, 1 on a failure, 2 on bad usage). */
export async function admin(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  const options = args.includes('--') ? args.slice(0, args.indexOf('--')) : args
  if (args.length === 0 || options.includes('--help') || options.includes('-h')) {
    ;(args.length === 0 ? err : out)(ADMIN_USAGE)
    return args.length === 0 ? 2 : 0
  }
  try {
    const { url, path, init } = request(args, env)
    const key = env.BELFRY_API_KEY
    if (!key) throw new Error('BELFRY_API_KEY must be set: the admin API takes the publish key')
    // A key no server has, which fetch would refuse to send (told as a server it cannot reach).
    if (!isBearerKey(key)) throw new Error(`BELFRY_API_KEY must be ${BEARER_KEY_RULE} (the server's publish key); got ${keyShape(key)}`)
    let res: Response
    try {
      // A redirect is not followed: fetch would drop the key on another origin and make a POST a GET, and the
      // failure would be told as a wrong key or method.
      res = await fetch(under(url, path), { ...init, redirect: 'manual', headers: { ...init.headers, authorization: `Bearer ${key}` } })
    } catch (error) {
      throw new Error(`cannot reach ${url}: ${((error as Error).cause as Error | undefined)?.message ?? (error as Error).message}`)
    }
    if (res.status >= 300 && res.status < 400) {
      const to = res.headers.get('location')
      throw new Error(
        `${res.status}: the server redirected to ${to ? redactUrl(new URL(to, url).href) : 'another URL'}; use that URL (--url or BELFRY_URL)`,
      )
    }
    const text = await res.text()
    let body: { message?: unknown } | undefined
    try {
      body = JSON.parse(text)
    } catch {}
    if (!res.ok) throw new Error(`${res.status} ${typeof body?.message === 'string' ? body.message : res.statusText}`)
    // Every admin answer is a JSON object: anything else (a front end's page, a proxy's sign-in) is not belfry's.
    if (typeof body !== 'object' || body === null) {
      throw new Error(
        `${res.status} from ${url}, but not the admin API's answer (${res.headers.get('content-type') ?? 'no content type'}): is it belfry?`,
      )
    }
    out(`${JSON.stringify(body, null, 2)}\n`)
    return 0
  } catch (error) {
    // The one place a message goes out: every URL in it without its password (fetch's own message repeats the URL),
    // on one line, with no control character of the answer's or the command line's reaching the terminal.
    const message = redact(`belfry-server admin: ${(error as Error).message}`).replace(
      CONTROL,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    )
    err(`${message}${error instanceof UsageError ? ' (see belfry-server admin --help)' : ''}\n`)
    return error instanceof UsageError ? 2 : 1
  }
}

/** C0 and C1 control characters (a newline, a terminal's escape): written out as `\\uXXXX` in a message. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are what it finds
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g

/**
 * The admin route `path` (with its query) under the server's URL, keeping the URL's own path: a server
 * behind a proxy under a prefix (`https://host/belfry`) is asked at `https://host/belfry/api/admin/…`.
 */
function under(url: string, path: string): URL {
  const base = new URL(url)
  base.pathname = base.pathname.replace(/\/*$/, '/')
  base.search = ''
  base.hash = ''
  return new URL(path.slice(1), base)
}

/**
 * An argument that is an operand though it starts with '-': '-' alone, or a
 * negative number ('user -1'); no option looks like either.
 */
const DASHED_OPERAND = /^-(\d+(\.\d+)?)?$/

/** The request a command line makes. */
function request(args: readonly string[], env: NodeJS.ProcessEnv): { url: string; path: string; init: RequestInit } {
  const rest: string[] = []
  const flags: Record<string, string> = {}
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === '--') {
      // The end of options: what follows is operands, '-1' or '--url' too.
      rest.push(...args.slice(i + 1))
      break
    }
    const flag = /^--(url|days|max-per-user)(?:=(.*))?$/.exec(arg)
    if (flag) {
      const name = flag[1]!
      const value = flag[2] ?? args[++i]
      if (value === undefined) throw new UsageError(`--${name} needs a value`)
      // Not the last one silently: 'prune --days 30 --days 0.001' would prune to 0.001 days.
      if (flags[name] !== undefined) throw new UsageError(`--${name} is given twice`)
      flags[name] = value
    } else if (arg.startsWith('-') && !DASHED_OPERAND.test(arg)) {
      throw new UsageError(`unknown option ${arg} (an operand that starts with '-' goes after '--')`)
    } else rest.push(arg)
  }
  const url = serverUrl(flags.url, env)
  const [command, ...operands] = rest
  if (command === 'user') {
    if (operands.length !== 1 || flags.days !== undefined || flags['max-per-user'] !== undefined) {
      throw new UsageError('user takes one user id')
    }
    return { url, path: `/api/admin/users?id=${encodeURIComponent(operands[0]!)}`, init: { method: 'GET' } }
  }
  if (command === 'unsubscribe') {
    if (operands.length < 2 || flags.days !== undefined || flags['max-per-user'] !== undefined) {
      throw new UsageError('unsubscribe takes a user id and one or more topics')
    }
    const [userId, ...topics] = operands
    const body = JSON.stringify({ userId, topics })
    return { url, path: '/api/admin/unsubscribe', init: { method: 'POST', body, headers: { 'content-type': 'application/json' } } }
  }
  if (command === 'prune') {
    if (operands.length > 0) throw new UsageError('prune takes no operands')
    const number = (name: string) => {
      const value = flags[name]
      if (value === undefined) return undefined
      // Decimal digits (a fraction allowed), as belfry-server reads its variables: not `Number()`, which reads "0x2" as 2.
      const n = decimal(value)
      if (Number.isNaN(n)) throw new UsageError(`--${name} must be a number, got "${value}"`)
      return n
    }
    const days = number('days')
    const maxPerUser = number('max-per-user')
    const body = JSON.stringify({ ...(days !== undefined && { days }), ...(maxPerUser !== undefined && { maxPerUser }) })
    return { url, path: '/api/admin/prune', init: { method: 'POST', body, headers: { 'content-type': 'application/json' } } }
  }
  throw new UsageError(command === undefined ? 'a command is missing' : `unknown command "${command}"`)
}

/** The server's URL: --url, else BELFRY_URL, else http://localhost:$PORT; a bad one is refused naming where it came from. */
function serverUrl(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  if (flag === undefined && env.BELFRY_URL === undefined) {
    const port = env.PORT || '3000'
    if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
      throw new UsageError(
        `PORT must be a port number from 1 to 65535 (without --url or BELFRY_URL, the server is http://localhost:$PORT), got "${port.slice(0, 32)}"`,
      )
    }
    return `http://localhost:${Number(port)}`
  }
  const [url, source] = flag !== undefined ? [flag, '--url'] : [env.BELFRY_URL!, 'BELFRY_URL']
  // Not shown at all with an @ (a password, or a user name alone that may be a token, in any shape: no scheme,
  // ws://, 'ops:secret@host'); redactUrl for the rest (a password given as ?password=).
  const shown = url.includes('@') ? '(not shown: it holds user info)' : redactUrl(url).slice(0, 120)
  if (!URL.canParse(url) || !/^https?:/.test(url)) throw new UsageError(`${source} must be an http:// or https:// URL, got "${shown}"`)
  // fetch refuses a URL with user info; and the admin API takes the key, not a password.
  const { username, password } = new URL(url)
  if (username || password) {
    // Not shown at all: a user name alone may be a token (https://TOKEN@host).
    throw new UsageError(`${source} must not hold credentials (user info before an @; the API key is read from BELFRY_API_KEY)`)
  }
  return url
}
