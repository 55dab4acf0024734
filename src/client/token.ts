/**
 * Reads the `sub` of a JWT without verifying it (the server verifies): only to
 * keep one cursor per user. '' when the token has no readable `sub`.
 */
export function subject(token: string): string {
  try {
    // No payload: undefined.replace throws, and the catch says ''.
    // atob gives the payload's UTF-8 bytes one a character; escape and decodeURIComponent read them as UTF-8.
    return String(JSON.parse(decodeURIComponent(escape(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))))).sub ?? '')
  } catch {
    return ''
  }
}
