import { deleteSessionsOfUser, insertSession } from '../db/queries/sessions.js';
import {
  deactivateAdmin,
  findUserByEmail,
  getUser,
  listActiveAdmins,
  lockActiveAdmins,
  setPasswordHash,
  upsertAdmin,
} from '../db/queries/users.js';
import type { UserRow } from '../db/schema.js';
import type { Db } from '../db/types.js';
import { DomainError } from './errors.js';
import { reserveLoginAttempt } from './login-throttle.js';
import { DEFAULT_HASH_COST, generatePassword, hashPassword, passwordProblem, verifyPassword } from './passwords.js';
import { generateToken, hashToken } from './tokens.js';
import { SESSION_TTL_MS } from './users.js';

/** An admin as the API and admin page list them: never a hash. */
export type AdminPublic = { id: string; email: string; full_name: string | null; created_at: string };

/** An admin as shown outside: id, email, name and creation time. */
export function toAdminPublic(user: UserRow): AdminPublic {
  return { id: user.id, email: user.email, full_name: user.fullName, created_at: user.createdAt.toISOString() };
}

/** A session opened for the caller after a change that signed every older one out. */
export type FreshSession = { token: string; expiresAt: Date };

function assertUsable(field: string, password: string): void {
  const problem = passwordProblem(password);
  if (problem) throw new DomainError('invalid_input', `${field}: ${problem}`);
}

/**
 * A signed-in user changes their own password. The current password is checked (and counted
 * against the sign-in limits, so a borrowed session cannot guess it); then every session of the
 * user is signed out, the one used included, and a fresh one is opened for the caller.
 */
export async function changeOwnPassword(
  db: Db,
  params: { userId: string; currentPassword: string; newPassword: string; now: Date; address: string | undefined; hashCost?: number },
): Promise<FreshSession> {
  const user = await getUser(db, params.userId);
  if (!user || !user.isActive) throw new DomainError('unauthenticated', 'sign in first');
  assertUsable('new_password', params.newPassword);
  const attempt = await reserveLoginAttempt(db, { email: user.email, address: params.address, now: params.now });
  if (!(await verifyPassword(params.currentPassword, user.passwordHash))) {
    throw new DomainError('forbidden', 'current password is incorrect');
  }
  const hash = await hashPassword(params.newPassword, params.hashCost ?? DEFAULT_HASH_COST);
  return db.transaction(async (tx) => {
    await attempt.succeeded(tx);
    await setPasswordHash(tx, user.id, hash);
    await deleteSessionsOfUser(tx, user.id);
    const token = generateToken('gfs');
    const expiresAt = new Date(params.now.getTime() + SESSION_TTL_MS);
    await insertSession(tx, { userId: user.id, tokenHash: hashToken(token), expiresAt });
    return { token, expiresAt };
  });
}

/**
 * Sets the password of the account with this email, on the server machine (`npm run admin --
 * reset-password`): no current password, since whoever runs it holds the database already. Every
 * session of the account is signed out. Returns how many there were.
 */
export async function resetPassword(db: Db, params: { email: string; newPassword: string; hashCost?: number }): Promise<{ user: UserRow; signedOut: number }> {
  assertUsable('password', params.newPassword);
  const user = await findUserByEmail(db, params.email);
  if (!user) throw new DomainError('not_found', `no account with the email ${params.email.toLowerCase()}`);
  const hash = await hashPassword(params.newPassword, params.hashCost ?? DEFAULT_HASH_COST);
  const signedOut = await db.transaction(async (tx) => {
    await setPasswordHash(tx, user.id, hash);
    return deleteSessionsOfUser(tx, user.id);
  });
  return { user, signedOut };
}

/** The active admins. */
export async function listAdmins(db: Db): Promise<AdminPublic[]> {
  return (await listActiveAdmins(db)).map(toAdminPublic);
}

/**
 * Makes an account an admin: a new one, or an existing user who is not an active admin (a
 * removed admin comes back). Its password is the one given, or a generated one, returned this once
 * to hand over; its older sessions are signed out.
 */
export async function addAdmin(
  db: Db,
  params: { email: string; password?: string | undefined; hashCost?: number },
): Promise<{ admin: AdminPublic; generatedPassword: string | undefined }> {
  const email = params.email.trim().toLowerCase();
  const existing = await findUserByEmail(db, email);
  if (existing?.isAdmin && existing.isActive) throw new DomainError('conflict', `${email} is an admin already`);
  const generatedPassword = params.password ? undefined : generatePassword();
  const password = params.password ?? generatedPassword!;
  assertUsable('password', password);
  const hash = await hashPassword(password, params.hashCost ?? DEFAULT_HASH_COST);
  const user = await db.transaction(async (tx) => {
    const row = await upsertAdmin(tx, { email, passwordHash: hash, setPassword: true });
    await deleteSessionsOfUser(tx, row.id);
    return row;
  });
  return { admin: toAdminPublic(user), generatedPassword };
}

/**
 * Removes an admin: their rights and their access (the account is deactivated, every session
 * signed out; its name stays in history). Never yourself, and never the last active admin, which
 * is checked with every admin row locked, so two admins removing each other at once cannot both
 * succeed.
 */
export async function removeAdmin(db: Db, params: { actorId: string; userId: string }): Promise<void> {
  if (params.actorId === params.userId) {
    throw new DomainError('conflict', 'you cannot remove yourself: ask another admin');
  }
  await db.transaction(async (tx) => {
    const admins = await lockActiveAdmins(tx);
    if (!admins.some((a) => a.id === params.userId)) throw new DomainError('not_found', `admin ${params.userId} not found`);
    if (admins.length <= 1) throw new DomainError('conflict', 'cannot remove the last admin');
    await deactivateAdmin(tx, params.userId);
    await deleteSessionsOfUser(tx, params.userId);
  });
}
