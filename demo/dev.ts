/** The reference server's dev-mode routes, on the page's own origin. */

interface DevToken {
  token: string
  userId: string
  /** The publish API key (dev mode only). */
  apiKey?: string
}

/** The answer of `POST /api/notifications`. */
export type PublishResult = { ok: true; recipients: number } | { ok: false; message: string }

/** Reads a JSON error body's message, or names the status. */
async function failure(res: Response): Promise<string> {
  const body: unknown = await res.json().catch(() => undefined)
  const message = typeof body === 'object' && body !== null && 'message' in body ? String(body.message) : ''
  return message || `HTTP ${res.status} ${res.statusText}`.trim()
}

/** Dev-mode access for one user: tokens, the publish key, dropping the user's sockets. */
export class DevServer {
  #apiKey: string | undefined

  constructor(readonly user: string) {}

  /** Mints a fresh token: the client's token provider, called on every connect. */
  readonly token = async (): Promise<string> => {
    const res = await fetch(`/api/dev/token?user=${encodeURIComponent(this.user)}`)
    if (!res.ok) throw new Error(`token: ${await failure(res)}`)
    const body = (await res.json()) as DevToken
    if (body.apiKey) this.#apiKey = body.apiKey
    return body.token
  }

  /** Publishes through the HTTP API with the dev API key. */
  async publish(request: Record<string, unknown>): Promise<PublishResult> {
    if (this.#apiKey === undefined) await this.token()
    const res = await fetch('/api/notifications', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${this.#apiKey ?? ''}` },
      body: JSON.stringify(request),
    })
    if (res.status !== 201) return { ok: false, message: await failure(res) }
    const { recipients } = (await res.json()) as { recipients: number }
    return { ok: true, recipients }
  }

  /** The topics the user is subscribed to, as the server has them (every page and device of the user). */
  async topics(): Promise<string[]> {
    const res = await fetch(`/api/dev/topics?user=${encodeURIComponent(this.user)}`)
    if (!res.ok) throw new Error(`topics: ${await failure(res)}`)
    return ((await res.json()) as { topics: string[] }).topics
  }

  /** Terminates all of this user's sockets on the server. */
  async drop(): Promise<void> {
    const res = await fetch(`/api/dev/drop?user=${encodeURIComponent(this.user)}`, { method: 'POST' })
    if (!res.ok) throw new Error(`drop: ${await failure(res)}`)
  }
}
