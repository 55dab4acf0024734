/**
 * A connection string as a message may show it: without a password, wherever
 * it is written: in a URL's user info (`postgres://user:secret@host`, the
 * secret unencoded `/`, `@` or space included), as a query parameter
 * (`?password=secret`, which pg and ioredis read), or as a libpq keyword
 * (`host=db password=secret` or `password='s e c'`). Every URL of the text:
 * a user info's password runs to the last `@` before the next URL.
 */
export function redact(text: string): string {
  return text
    .replace(/(\/\/[^/@\s:]*:)(?:(?:(?!:\/\/)[\s\S])*@|\S*@)/g, '$1***@')
    .replace(/(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&;#]*)/gi, '$1***')
}

/**
 * One connection string, whatever its shape, as a message may show it: a
 * mistyped one too (`belfry:secret@db` without its scheme, `postgres:/u:secret@db`
 * with one slash, `:secret@cache`). When it holds an `@`, everything from the
 * first `:` of its user info (after `scheme://`, else the first `:` at all) to
 * its last `@` is hidden; then what {@link redact} hides.
 */
export function redactUrl(url: string): string {
  const at = url.lastIndexOf('@')
  if (at !== -1) {
    const start = /^[a-z][a-z\d+.-]*:\/\//i.exec(url)?.[0].length ?? 0
    const colon = url.indexOf(':', start)
    if (colon !== -1 && colon < at) url = `${url.slice(0, colon + 1)}***${url.slice(at)}`
  }
  return redact(url)
}
