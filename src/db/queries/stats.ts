import { and, count, eq, isNull, sql } from 'drizzle-orm';
import { nodes, tasks } from '../schema.js';
import type { DbOrTx } from '../types.js';

export async function countTasksByStatus(db: DbOrTx): Promise<Array<{ status: string; n: number }>> {
  return db.select({ status: tasks.status, n: count() }).from(tasks).groupBy(tasks.status);
}

export async function countQueued(db: DbOrTx): Promise<number> {
  const [row] = await db.select({ n: count() }).from(tasks).where(and(eq(tasks.status, 'pending'), isNull(tasks.nodeId)));
  return row?.n ?? 0;
}

export async function countNodes(db: DbOrTx, onlineSince: Date): Promise<{ online: number; total: number; capacity: number }> {
  const [row] = await db
    .select({
      total: count(),
      online: sql<number>`count(*) filter (where ${nodes.lastHeartbeatAt} > ${onlineSince.toISOString()}::timestamptz)::int`,
      capacity: sql<number>`coalesce(sum(${nodes.capacity}) filter (where ${nodes.lastHeartbeatAt} > ${onlineSince.toISOString()}::timestamptz and ${nodes.status} = 'active'), 0)::int`,
    })
    .from(nodes);
  return { online: Number(row?.online ?? 0), total: row?.total ?? 0, capacity: Number(row?.capacity ?? 0) };
}
