import { and, asc, eq, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import { loginThrottles, type LoginThrottleRow } from '../schema.js';
import type { DbOrTx } from '../types.js';

/** Locks the throttle rows of these keys (made first if missing), in key order so two callers never deadlock. */
export async function lockThrottles(db: DbOrTx, keys: string[], now: Date): Promise<LoginThrottleRow[]> {
  await db
    .insert(loginThrottles)
    .values(keys.map((key) => ({ key, failures: 0, updatedAt: now })))
    .onConflictDoNothing();
  return db.select().from(loginThrottles).where(inArray(loginThrottles.key, keys)).orderBy(asc(loginThrottles.key)).for('update');
}

export async function saveThrottle(
  db: DbOrTx,
  row: { key: string; failures: number; lockedUntil: Date | null; updatedAt: Date },
): Promise<void> {
  await db
    .update(loginThrottles)
    .set({ failures: row.failures, lockedUntil: row.lockedUntil, updatedAt: row.updatedAt })
    .where(eq(loginThrottles.key, row.key));
}

export async function deleteThrottles(db: DbOrTx, keys: string[]): Promise<void> {
  if (keys.length > 0) await db.delete(loginThrottles).where(inArray(loginThrottles.key, keys));
}

/** Gives back one attempt a successful sign-in had reserved; back within the free ones, any lock goes too. */
export async function releaseThrottle(db: DbOrTx, key: string, freeAttempts: number): Promise<void> {
  await db
    .update(loginThrottles)
    .set({
      failures: sql`greatest(${loginThrottles.failures} - 1, 0)`,
      lockedUntil: sql`case when ${loginThrottles.failures} - 1 <= ${freeAttempts} then null else ${loginThrottles.lockedUntil} end`,
    })
    .where(eq(loginThrottles.key, key));
}

/** Deletes throttle rows quiet since `before` (and not locked past it), up to `limit`; how many went. */
export async function pruneThrottles(db: DbOrTx, before: Date, limit: number): Promise<number> {
  const stale = db
    .select({ key: loginThrottles.key })
    .from(loginThrottles)
    .where(and(lt(loginThrottles.updatedAt, before), or(isNull(loginThrottles.lockedUntil), lt(loginThrottles.lockedUntil, before))))
    .limit(limit);
  const gone = await db.delete(loginThrottles).where(inArray(loginThrottles.key, stale)).returning({ key: loginThrottles.key });
  return gone.length;
}
