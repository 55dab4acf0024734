/** Base class of every error the client reports or rejects with. */
export class BelfryError extends Error {
  override name: string = 'BelfryError'
  /** A close code or a server error code, when one applies. */
  declare readonly code: string | number | undefined

  constructor(message: string, options: { code?: string | number | undefined; cause?: unknown } = {}) {
    super(message, options) // a cause, when given
    this.code = options.code
  }
}

/** The server refused the token (4001 after a fresh one, 4001 or 4002 for a token string) or the user (4003). Retrying stops. */
export class AuthError extends BelfryError {
  override name = 'AuthError' as const
}

/** A frame that breaks the protocol, or an `error` reply from the server. */
export class ProtocolError extends BelfryError {
  override name = 'ProtocolError' as const
}

/** A request got no reply in time. */
export class TimeoutError extends BelfryError {
  override name = 'TimeoutError' as const
}

/** A request could not be sent: the queue is full, or the client is closed. */
export class RequestError extends BelfryError {
  override name = 'RequestError' as const
}

/** A connection attempt failed before the server answered: unreachable, no WebSocket endpoint there, a TLS mismatch. Retrying goes on. */
export class ConnectionError extends BelfryError {
  override name = 'ConnectionError' as const
}
