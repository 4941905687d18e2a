import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/** log2 of scrypt's N for new hashes in production: 2^17, as OWASP recommends for scrypt. */
export const DEFAULT_HASH_COST = 17;
/** Hashes with a larger N than this are refused rather than computed (a corrupt row must not take 1 GiB). */
const MAX_HASH_COST = 20;
const R = 8;

/** The password earlier documentation and compose.yaml printed; refused everywhere. */
export const SAMPLE_PASSWORD = 'change-me-now';
/** Bounds of a password a person chooses. */
export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 1000;

/** Why a new password cannot be used, or undefined when it can. */
export function passwordProblem(password: string): string | undefined {
  if (password.length < PASSWORD_MIN_LENGTH) return `must be at least ${PASSWORD_MIN_LENGTH} characters`;
  if (password.length > PASSWORD_MAX_LENGTH) return `must be at most ${PASSWORD_MAX_LENGTH} characters`;
  if (password === SAMPLE_PASSWORD) return 'is the sample password from the documentation; choose one of your own';
  return undefined;
}

/** A random password for a new account or a reset: 24 URL-safe characters (144 bits). */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}
const P = 1;
const KEYLEN = 32;

function derive(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  // scrypt needs 128·N·r bytes; Node's default cap (32 MiB) is below what N = 2^17 takes.
  const maxmem = 256 * n * r;
  return new Promise((resolve, reject) =>
    scrypt(password, salt, KEYLEN, { N: n, r, p, maxmem }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/**
 * Hashes a password with scrypt at N = 2^cost; the parameters travel in the hash, so a later, higher
 * cost can tell an old hash ({@link hashCost}) and upgrade it at the next sign-in.
 */
export async function hashPassword(password: string, cost = DEFAULT_HASH_COST): Promise<string> {
  const n = 2 ** cost;
  const salt = randomBytes(16);
  const key = await derive(password, salt, n, R, P);
  return `scrypt$${n}$${R}$${P}$${salt.toString('base64')}$${key.toString('base64')}`;
}

type Parsed = { n: number; r: number; p: number; salt: Buffer; key: Buffer };

function parseHash(hash: string): Parsed | undefined {
  const parts = hash.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [, n, r, p, salt, key] = parts as [string, string, string, string, string, string];
  const parsed = { n: Number(n), r: Number(r), p: Number(p), salt: Buffer.from(salt, 'base64'), key: Buffer.from(key, 'base64') };
  const powerOfTwo = Number.isSafeInteger(parsed.n) && parsed.n > 1 && (parsed.n & (parsed.n - 1)) === 0;
  if (!powerOfTwo || parsed.n > 2 ** MAX_HASH_COST || parsed.r !== R || parsed.p !== P) return undefined;
  return parsed;
}

/** log2 of N a hash was made with; undefined for a hash this module cannot read. */
export function hashCost(hash: string): number | undefined {
  const parsed = parseHash(hash);
  return parsed ? Math.log2(parsed.n) : undefined;
}

/** Whether a hash was made with less work than `cost` asks for, and should be made again. */
export function needsRehash(hash: string, cost = DEFAULT_HASH_COST): boolean {
  const current = hashCost(hash);
  return current === undefined || current < cost;
}

/** Checks a password against a hash from {@link hashPassword}, in constant time. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const parsed = parseHash(hash);
  if (!parsed) return false;
  const actual = await derive(password, parsed.salt, parsed.n, parsed.r, parsed.p);
  return actual.length === parsed.key.length && timingSafeEqual(actual, parsed.key);
}
