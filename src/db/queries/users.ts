import { and, asc, eq } from 'drizzle-orm';
import { users, type UserRow } from '../schema.js';
import type { DbOrTx } from '../types.js';

export async function findUserByEmail(db: DbOrTx, email: string): Promise<UserRow | undefined> {
  const [row] = await db.select().from(users).where(eq(users.email, email.toLowerCase()));
  return row;
}

export async function getUser(db: DbOrTx, id: string): Promise<UserRow | undefined> {
  const [row] = await db.select().from(users).where(eq(users.id, id));
  return row;
}

export async function insertUser(
  db: DbOrTx,
  params: { email: string; passwordHash: string; isAdmin?: boolean; fullName?: string; githubLogin?: string },
): Promise<UserRow> {
  const [row] = await db
    .insert(users)
    .values({ ...params, email: params.email.toLowerCase() })
    .returning();
  return row!;
}

/**
 * Creates the user as an active admin, or makes an existing one that; the password (and the marker
 * of the ADMIN_PASSWORD it came from, if given) is set only on create unless `setPassword`.
 */
export async function upsertAdmin(
  db: DbOrTx,
  params: { email: string; passwordHash: string; adminEnvPasswordHash?: string | null; setPassword?: boolean },
): Promise<UserRow> {
  const values = { email: params.email.toLowerCase(), passwordHash: params.passwordHash, isAdmin: true, adminEnvPasswordHash: params.adminEnvPasswordHash ?? null };
  const [row] = await db
    .insert(users)
    .values(values)
    .onConflictDoUpdate({
      target: users.email,
      set: { isAdmin: true, isActive: true, updatedAt: new Date(), ...(params.setPassword ? { passwordHash: params.passwordHash } : {}) },
    })
    .returning();
  return row!;
}

/** Replaces a user's password hash (a change, a reset, or an upgrade to a higher cost at sign-in). */
export async function setPasswordHash(db: DbOrTx, id: string, passwordHash: string): Promise<void> {
  await db.update(users).set({ passwordHash, updatedAt: new Date() }).where(eq(users.id, id));
}

/** Records the ADMIN_PASSWORD last applied to an account, as a scrypt hash; sets the password with it when given. */
export async function setAdminEnvPassword(db: DbOrTx, id: string, params: { marker: string; passwordHash?: string }): Promise<void> {
  await db
    .update(users)
    .set({ adminEnvPasswordHash: params.marker, ...(params.passwordHash ? { passwordHash: params.passwordHash } : {}), updatedAt: new Date() })
    .where(eq(users.id, id));
}

/** Active admins, by email. */
export async function listActiveAdmins(db: DbOrTx): Promise<UserRow[]> {
  return db.select().from(users).where(and(eq(users.isAdmin, true), eq(users.isActive, true))).orderBy(asc(users.email));
}

/**
 * Every active admin, locked in id order: two removals at once then take turns (never deadlock),
 * and the second sees what the first left.
 */
export async function lockActiveAdmins(db: DbOrTx): Promise<UserRow[]> {
  return db
    .select()
    .from(users)
    .where(and(eq(users.isAdmin, true), eq(users.isActive, true)))
    .orderBy(asc(users.id))
    .for('update');
}

/** Locks one user row. */
export async function lockUser(db: DbOrTx, id: string): Promise<UserRow | undefined> {
  const [row] = await db.select().from(users).where(eq(users.id, id)).for('update');
  return row;
}

/** Takes an admin's rights and access away; the row stays, so history keeps its name. */
export async function deactivateAdmin(db: DbOrTx, id: string): Promise<void> {
  await db.update(users).set({ isAdmin: false, isActive: false, updatedAt: new Date() }).where(eq(users.id, id));
}
