import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Prefixes make Gaffer's tokens recognisable to secret scanners and to the log masker. */
export type TokenKind = 'gfn' | 'gfs' | 'gfr';

/** A new random token: `gfn_` for nodes, `gfs_` for user sessions, `gfr_` for node registration. */
export function generateToken(kind: TokenKind): string {
  return `${kind}_${randomBytes(32).toString('base64url')}`;
}

/** What is stored of a token: its sha256. High-entropy tokens need no slow hash. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Whether a presented secret is the expected one, in constant time; a missing one never is. */
export function sameSecret(presented: string | undefined | null, expected: string | undefined | null): boolean {
  if (!presented || !expected) return false;
  const x = Buffer.from(presented);
  const y = Buffer.from(expected);
  return x.length === y.length && timingSafeEqual(x, y);
}
