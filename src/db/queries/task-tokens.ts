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

/**
 * Claims tokens for revocation: of `ids`, those whose next try is due move their next try to
 * `leaseUntil` and are returned. The update re-checks each row under its lock, so of two callers
 * (the task's end, the sweeper, another replica) exactly one gets a row; a claimer that dies leaves
 * it due again when the lease runs out.
 */
export async function claimTaskTokens(db: DbOrTx, params: { ids: string[]; now: Date; leaseUntil: Date }): Promise<TaskTokenRow[]> {
  if (params.ids.length === 0) return [];
  return db
    .update(taskTokens)
    .set({ nextRevokeAt: params.leaseUntil })
    .where(and(inArray(taskTokens.id, params.ids), lte(taskTokens.nextRevokeAt, params.now)))
    .returning();
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
