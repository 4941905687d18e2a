import { and, eq, inArray, isNull, lte, or, sql } from 'drizzle-orm';
import { tasks, taskTokens, type TaskTokenRow } from '../schema.js';
import type { DbOrTx } from '../types.js';

export type NewTaskToken = typeof taskTokens.$inferInsert;

export async function insertTaskToken(db: DbOrTx, values: NewTaskToken): Promise<TaskTokenRow> {
  const [row] = await db.insert(taskTokens).values(values).returning();
  return row!;
}

/** The tokens still kept for a task. */
export async function taskTokensForTask(db: DbOrTx, taskId: string): Promise<TaskTokenRow[]> {
  return db.select().from(taskTokens).where(eq(taskTokens.taskId, taskId));
}

export async function getTaskToken(db: DbOrTx, id: string): Promise<TaskTokenRow | undefined> {
  const [row] = await db.select().from(taskTokens).where(eq(taskTokens.id, id));
  return row;
}

/**
 * Marks a token's revocation as recorded in the outbox: due whatever its task does next, and left
 * alone by the sweeper until it expires (the effect retries by itself; a dead one is retried by an admin).
 */
export async function markRevokeRecorded(db: DbOrTx, id: string): Promise<void> {
  await db.update(taskTokens).set({ revokeDue: true, nextRevokeAt: taskTokens.expiresAt }).where(eq(taskTokens.id, id));
}

export async function deleteTaskToken(db: DbOrTx, id: string): Promise<void> {
  await db.delete(taskTokens).where(eq(taskTokens.id, id));
}

/** Records a failed revocation: due regardless of the task from now on, tried again at `nextRevokeAt`. */
export async function markRevokeFailed(db: DbOrTx, id: string, params: { nextRevokeAt: Date; lastError: string }): Promise<void> {
  await db
    .update(taskTokens)
    .set({
      revokeDue: true,
      revokeAttempts: sql`${taskTokens.revokeAttempts} + 1`,
      nextRevokeAt: params.nextRevokeAt,
      lastError: params.lastError,
    })
    .where(eq(taskTokens.id, id));
}

/** Forgets tokens that have expired by themselves: GitHub no longer takes them, so there is nothing to revoke. */
export async function deleteExpiredTaskTokens(db: DbOrTx, now: Date): Promise<number> {
  const rows = await db.delete(taskTokens).where(lte(taskTokens.expiresAt, now)).returning({ id: taskTokens.id });
  return rows.length;
}

/**
 * Tokens to revoke now: their task has ended (or is gone), or an earlier revocation failed or was
 * asked for on its own (a delivery given up), and their next try is due.
 */
export async function dueTaskTokens(db: DbOrTx, params: { now: Date; limit: number }): Promise<TaskTokenRow[]> {
  const rows = await db
    .select({ token: taskTokens })
    .from(taskTokens)
    .leftJoin(tasks, eq(tasks.id, taskTokens.taskId))
    .where(
      and(
        lte(taskTokens.nextRevokeAt, params.now),
        or(isNull(taskTokens.taskId), eq(taskTokens.revokeDue, true), inArray(tasks.status, ['success', 'failed'])),
      ),
    )
    .orderBy(taskTokens.nextRevokeAt)
    .limit(params.limit);
  return rows.map((r) => r.token);
}
