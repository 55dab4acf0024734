/**
 * Reads the `sub` of a JWT without verifying it (the server verifies): only to
 * keep one cursor per user. '' when the token has no readable `sub`.
 */
export function subject(token: string): string {
  try {
    // No payload: undefined.replace throws, and the catch says ''.
    const bytes = Uint8Array.from(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0))
    return String(JSON.parse(new TextDecoder().decode(bytes)).sub ?? '')
  } catch {
    return ''
  }
}
