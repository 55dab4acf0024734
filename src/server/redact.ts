/**
 * A connection string as a message may show it: without a password, wherever
 * it is written: in a URL's user info (`postgres://user:secret@host`, the
 * secret unencoded `/` or `@` included), as a query parameter
 * (`?password=secret`, which pg and ioredis read), or as a libpq keyword
 * (`host=db password=secret` or `password='s e c'`). Every URL of the text.
 */
export function redact(text: string): string {
  return text.replace(/(\/\/[^/@\s:]*:)\S*@/g, '$1***@').replace(/(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&;#]*)/gi, '$1***')
}
