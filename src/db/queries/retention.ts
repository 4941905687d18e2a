import { and, asc, eq, inArray, lt } from 'drizzle-orm';
import { taskLogChunks, tasks, webhookDeliveries } from '../schema.js';
import type { DbOrTx } from '../types.js';

/** Deletes up to `limit` webhook delivery records received before `before`, oldest first; how many went. */
export async function pruneWebhookDeliveries(db: DbOrTx, before: Date, limit: number): Promise<number> {
  const oldest = db
    .select({ id: webhookDeliveries.deliveryId })
    .from(webhookDeliveries)
    .where(lt(webhookDeliveries.receivedAt, before))
    .orderBy(asc(webhookDeliveries.receivedAt))
    .limit(limit);
  const gone = await db.delete(webhookDeliveries).where(inArray(webhookDeliveries.deliveryId, oldest)).returning({ id: webhookDeliveries.deliveryId });
  return gone.length;
}

/**
 * Deletes up to `limit` log chunks written before `before` of tasks that ended before it, oldest
 * first; how many went. A task still running keeps its whole log, however old.
 */
export async function pruneTaskLogChunks(db: DbOrTx, before: Date, limit: number): Promise<number> {
  const oldest = db
    .select({ id: taskLogChunks.id })
    .from(taskLogChunks)
    .innerJoin(tasks, eq(tasks.id, taskLogChunks.taskId))
    .where(
      and(
        lt(taskLogChunks.createdAt, before),
        inArray(tasks.status, ['success', 'failed']),
        lt(tasks.completedAt, before),
      ),
    )
    .orderBy(asc(taskLogChunks.createdAt))
    .limit(limit);
  const gone = await db.delete(taskLogChunks).where(inArray(taskLogChunks.id, oldest)).returning({ id: taskLogChunks.id });
  return gone.length;
}
