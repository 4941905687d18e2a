import { eq } from 'drizzle-orm';
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

/** Creates the user as an admin, or makes an existing one admin; the password is set only on create. */
export async function upsertAdmin(db: DbOrTx, params: { email: string; passwordHash: string }): Promise<UserRow> {
  const [row] = await db
    .insert(users)
    .values({ email: params.email.toLowerCase(), passwordHash: params.passwordHash, isAdmin: true })
    .onConflictDoUpdate({ target: users.email, set: { isAdmin: true, updatedAt: new Date() } })
    .returning();
  return row!;
}

/** Replaces a user's password hash (an upgrade to a higher cost, at sign-in). */
export async function setPasswordHash(db: DbOrTx, id: string, passwordHash: string): Promise<void> {
  await db.update(users).set({ passwordHash, updatedAt: new Date() }).where(eq(users.id, id));
}
