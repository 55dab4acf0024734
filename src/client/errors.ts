/** Base class of every error the client reports or rejects with. */
export class BelfryError extends Error {
  override name: string = 'BelfryError'
  /** A close code or a server error code, when one applies. */
  declare readonly code: string | number | undefined

  /** `topic`: a refused subscription's ({@link ProtocolError}); set here, where `code` is, as it costs fewest bytes. */
  constructor(message: string, options: { code?: string | number | undefined; cause?: unknown; topic?: string | undefined } = {}) {
    super(message, options) // a cause, when given
    this.code = options.code
    ;(this as { topic?: string | undefined }).topic = options.topic
  }
}

/** The server refused the token (4001 after a fresh one, 4001 or 4002 for a token string) or the user (4003). Retrying stops. */
export class AuthError extends BelfryError {
  override name = 'AuthError' as const
}

/** A frame that breaks the protocol, an `error` reply from the server, or a refused subscription. */
export class ProtocolError extends BelfryError {
  override name = 'ProtocolError' as const
  /** A subscription the server (or the client: too long) refused: its topic. Undefined for any other. */
  declare readonly topic: string | undefined
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
