import { and, asc, eq, gte, sql } from 'drizzle-orm';
import { taskLogChunks, type TaskLogChunkRow } from '../schema.js';
import type { DbOrTx } from '../types.js';

/** The byte length of a task's stored log: where the next chunk must start. */
export async function logEnd(db: DbOrTx, taskId: string): Promise<number> {
  const [row] = await db
    .select({ end: sql<number>`coalesce(max(${taskLogChunks.offset} + ${taskLogChunks.size}), 0)::bigint` })
    .from(taskLogChunks)
    .where(eq(taskLogChunks.taskId, taskId));
  return Number(row?.end ?? 0);
}

export async function insertLogChunk(
  db: DbOrTx,
  values: { taskId: string; offset: number; size: number; content: string },
): Promise<void> {
  await db.insert(taskLogChunks).values(values);
}

/** Chunks from a byte offset on, in order. */
export async function readLogChunks(db: DbOrTx, taskId: string, fromOffset = 0, limit = 1000): Promise<TaskLogChunkRow[]> {
  return db
    .select()
    .from(taskLogChunks)
    .where(and(eq(taskLogChunks.taskId, taskId), gte(sql`${taskLogChunks.offset} + ${taskLogChunks.size}`, fromOffset + 1)))
    .orderBy(asc(taskLogChunks.offset))
    .limit(limit);
}
