import { findUserByEmail, setAdminEnvPassword, setPasswordHash, upsertAdmin } from '../db/queries/users.js';
import { deleteSession, deleteSessionsOfUser, findSessionUser, insertSession } from '../db/queries/sessions.js';
import type { UserRow } from '../db/schema.js';
import type { Db, DbOrTx } from '../db/types.js';
import { DomainError } from './errors.js';
import { reserveLoginAttempt } from './login-throttle.js';
import { DEFAULT_HASH_COST, hashPassword, needsRehash, verifyPassword } from './passwords.js';
import { generateToken, hashToken } from './tokens.js';

/** A signed-in person, as the rest of the domain sees them. */
export type Actor = { kind: 'user'; id: string; email: string; isAdmin: boolean; githubLogin: string | null };

export function actorOf(user: UserRow): Actor {
  return { kind: 'user', id: user.id, email: user.email, isAdmin: user.isAdmin, githubLogin: user.githubLogin };
}

export const SESSION_TTL_MS = 8 * 24 * 60 * 60 * 1000;

/** What applying ADMIN_EMAIL and ADMIN_PASSWORD at start did. */
export type FirstAdminResult = {
  user: UserRow;
  /** `created`: a new account; `applied`: ADMIN_PASSWORD replaced the password; `unchanged`: it was as last applied. */
  password: 'created' | 'applied' | 'unchanged';
  /** Sessions signed out because the password changed. */
  signedOut: number;
};

/**
 * Creates the configured first admin, or makes an existing user of that email an active admin,
 * and applies ADMIN_PASSWORD when it differs from the one last applied (kept as a scrypt hash in
 * `admin_env_password_hash`): a changed ADMIN_PASSWORD rotates the password and signs the admin
 * out everywhere, while an unchanged one leaves alone a password changed since in the admin page,
 * the API or with `npm run admin -- reset-password`. Never logs or returns the password.
 */
export async function ensureFirstAdmin(
  db: Db,
  admin: { email: string; password: string },
  hashCost = DEFAULT_HASH_COST,
): Promise<FirstAdminResult> {
  const existing = await findUserByEmail(db, admin.email);
  if (!existing) {
    const hash = await hashPassword(admin.password, hashCost);
    const user = await upsertAdmin(db, { email: admin.email, passwordHash: hash, adminEnvPasswordHash: hash });
    return { user, password: 'created', signedOut: 0 };
  }
  const user = existing.isAdmin && existing.isActive ? existing : await upsertAdmin(db, { email: admin.email, passwordHash: existing.passwordHash });
  if (user.adminEnvPasswordHash && (await verifyPassword(admin.password, user.adminEnvPasswordHash))) {
    return { user, password: 'unchanged', signedOut: 0 };
  }
  // Nothing recorded yet (an account from before the marker) and the password is the env's: only record it.
  if (!user.adminEnvPasswordHash && (await verifyPassword(admin.password, user.passwordHash))) {
    await setAdminEnvPassword(db, user.id, { marker: user.passwordHash });
    return { user, password: 'unchanged', signedOut: 0 };
  }
  const hash = await hashPassword(admin.password, hashCost);
  const signedOut = await db.transaction(async (tx) => {
    await setAdminEnvPassword(tx, user.id, { marker: hash, passwordHash: hash });
    return deleteSessionsOfUser(tx, user.id);
  });
  return { user, password: 'applied', signedOut };
}

/** A throwaway hash per cost, verified when the user is unknown, so timing does not reveal accounts. */
const dummyHashes = new Map<number, Promise<string>>();
function dummyHash(cost: number): Promise<string> {
  let hash = dummyHashes.get(cost);
  if (!hash) {
    hash = hashPassword('not a password anyone has', cost);
    dummyHashes.set(cost, hash);
  }
  return hash;
}

/**
 * Checks email and password and opens a session; the same refusal for either being wrong. Each
 * attempt is first counted against the account and the client address (`rate_limited` once over
 * the limit, before any hashing). A hash made at a lower cost than `hashCost` is upgraded.
 */
export async function login(
  db: DbOrTx,
  params: { email: string; password: string; now?: Date; address?: string | undefined; hashCost?: number },
): Promise<{ token: string; user: UserRow; expiresAt: Date }> {
  const now = params.now ?? new Date();
  const cost = params.hashCost ?? DEFAULT_HASH_COST;
  const attempt = await reserveLoginAttempt(db, { email: params.email, address: params.address, now });
  const user = await findUserByEmail(db, params.email);
  const ok = await verifyPassword(params.password, user?.passwordHash ?? (await dummyHash(cost)));
  if (!user || !ok || !user.isActive) throw new DomainError('unauthenticated', 'incorrect email or password');
  await attempt.succeeded(db);
  if (needsRehash(user.passwordHash, cost)) await setPasswordHash(db, user.id, await hashPassword(params.password, cost));
  const token = generateToken('gfs');
  const expiresAt = new Date(now.getTime() + SESSION_TTL_MS);
  await insertSession(db, { userId: user.id, tokenHash: hashToken(token), expiresAt });
  return { token, user, expiresAt };
}

/** The user behind a session token, or an `unauthenticated` error. */
export async function authenticateSession(db: DbOrTx, token: string, now = new Date()): Promise<UserRow> {
  const user = await findSessionUser(db, hashToken(token), now);
  if (!user) throw new DomainError('unauthenticated', 'session token is invalid or expired');
  return user;
}

export async function logout(db: DbOrTx, token: string): Promise<void> {
  await deleteSession(db, hashToken(token));
}
