import { desc, eq, sql } from 'drizzle-orm';
import { registrationTokens, type RegistrationTokenRow } from '../schema.js';
import type { DbOrTx } from '../types.js';

export type NewRegistrationToken = typeof registrationTokens.$inferInsert;

export async function insertRegistrationToken(db: DbOrTx, values: NewRegistrationToken): Promise<RegistrationTokenRow> {
  const [row] = await db.insert(registrationTokens).values(values).returning();
  return row!;
}

/** The token behind a hash, locked so two registrations cannot both take its last use. */
export async function lockRegistrationTokenByHash(db: DbOrTx, tokenHash: string): Promise<RegistrationTokenRow | undefined> {
  const [row] = await db.select().from(registrationTokens).where(eq(registrationTokens.tokenHash, tokenHash)).for('update');
  return row;
}

/** The token behind a hash, unlocked: for reads that spend no use. */
export async function getRegistrationTokenByHash(db: DbOrTx, tokenHash: string): Promise<RegistrationTokenRow | undefined> {
  const [row] = await db.select().from(registrationTokens).where(eq(registrationTokens.tokenHash, tokenHash));
  return row;
}

export async function getRegistrationToken(db: DbOrTx, id: string): Promise<RegistrationTokenRow | undefined> {
  const [row] = await db.select().from(registrationTokens).where(eq(registrationTokens.id, id));
  return row;
}

/** Every token, newest first. */
export async function listRegistrationTokens(db: DbOrTx): Promise<RegistrationTokenRow[]> {
  return db.select().from(registrationTokens).orderBy(desc(registrationTokens.createdAt), desc(registrationTokens.id));
}

/** Counts one use. */
export async function useRegistrationToken(db: DbOrTx, id: string, at: Date): Promise<void> {
  await db
    .update(registrationTokens)
    .set({ uses: sql`${registrationTokens.uses} + 1`, lastUsedAt: at })
    .where(eq(registrationTokens.id, id));
}

/** Revokes a token; a second revoke keeps the first time. */
export async function revokeRegistrationToken(db: DbOrTx, id: string, at: Date): Promise<RegistrationTokenRow | undefined> {
  const [row] = await db
    .update(registrationTokens)
    .set({ revokedAt: sql`coalesce(${registrationTokens.revokedAt}, ${at.toISOString()}::timestamptz)` })
    .where(eq(registrationTokens.id, id))
    .returning();
  return row;
}
