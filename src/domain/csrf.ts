import { createHash } from 'node:crypto';
import { sameSecret } from './tokens.js';

/**
 * The CSRF token for a browser session: derived from the session token, so it needs no storage,
 * changes with each sign-in, and cannot be computed by a page that cannot read the HttpOnly
 * session cookie.
 */
export function csrfTokenFor(sessionToken: string): string {
  return createHash('sha256').update(`gaffer-csrf:${sessionToken}`).digest('base64url');
}

/** Whether a presented CSRF token belongs to this session; constant-time. */
export function csrfMatches(sessionToken: string, presented: string | undefined | null): boolean {
  return sameSecret(presented, csrfTokenFor(sessionToken));
}
