import { and, asc, count, eq, gt, inArray, sql } from 'drizzle-orm';
import { ACTIVE_TASK_STATUSES } from '../../protocol/statuses.js';
import { credentials, nodes, tasks, type NodeRow } from '../schema.js';
import type { DbOrTx } from '../types.js';

export type NewNode = typeof nodes.$inferInsert;

export async function insertNode(db: DbOrTx, values: NewNode): Promise<NodeRow> {
  const [row] = await db.insert(nodes).values(values).returning();
  return row!;
}

export async function getNode(db: DbOrTx, id: string): Promise<NodeRow | undefined> {
  const [row] = await db.select().from(nodes).where(eq(nodes.id, id));
  return row;
}

export async function getNodeByName(db: DbOrTx, name: string): Promise<NodeRow | undefined> {
  const [row] = await db.select().from(nodes).where(eq(nodes.name, name));
  return row;
}

export async function getNodeByTokenHash(db: DbOrTx, tokenHash: string): Promise<NodeRow | undefined> {
  const [row] = await db.select().from(nodes).where(eq(nodes.tokenHash, tokenHash));
  return row;
}

export async function updateNode(
  db: DbOrTx,
  id: string,
  values: Partial<Pick<NodeRow, 'url' | 'labels' | 'capacity' | 'status' | 'tokenHash' | 'signingSecret' | 'lastHeartbeatAt'>>,
): Promise<NodeRow | undefined> {
  const [row] = await db
    .update(nodes)
    .set({ ...values, updatedAt: new Date() })
    .where(eq(nodes.id, id))
    .returning();
  return row;
}

export async function deleteNode(db: DbOrTx, id: string): Promise<boolean> {
  const rows = await db.delete(nodes).where(eq(nodes.id, id)).returning({ id: nodes.id });
  return rows.length > 0;
}

export async function touchHeartbeat(db: DbOrTx, id: string, at: Date): Promise<NodeRow | undefined> {
  const [row] = await db.update(nodes).set({ lastHeartbeatAt: at }).where(eq(nodes.id, id)).returning();
  return row;
}

/** Active (pending or running) tasks held by one node, counted fresh. */
export async function countActiveTasksOnNode(db: DbOrTx, nodeId: string): Promise<number> {
  const [row] = await db
    .select({ n: count() })
    .from(tasks)
    .where(and(eq(tasks.nodeId, nodeId), inArray(tasks.status, ACTIVE_TASK_STATUSES)));
  return row?.n ?? 0;
}

const activeCount = sql<number>`(select count(*)::int from ${tasks} where ${tasks.nodeId} = ${nodes.id} and ${tasks.status} in ('pending', 'running'))`;

/**
 * The best eligible node for a task, locked for update and skipping nodes another dispatcher
 * holds: active, heard from since `onlineSince`, carrying every required label, with room.
 * Least loaded first, then least recently assigned. `exclude` skips nodes already found full;
 * `withNodeCredential` keeps to nodes that carry a PAT, for repositories only a node's PAT serves.
 * The load read here may be stale; the caller re-counts once it holds the lock.
 */
export async function lockCandidateNode(
  db: DbOrTx,
  params: { requiredLabels: string[]; onlineSince: Date; exclude: string[]; withNodeCredential?: boolean },
): Promise<NodeRow | undefined> {
  const conditions = [
    eq(nodes.status, 'active'),
    gt(nodes.lastHeartbeatAt, params.onlineSince),
    gt(nodes.capacity, activeCount),
    sql`${nodes.labels} @> ${sql.param(params.requiredLabels, nodes.labels)}`,
  ];
  if (params.withNodeCredential) {
    conditions.push(sql`exists (select 1 from ${credentials} where ${credentials.nodeId} = ${nodes.id})`);
  }
  if (params.exclude.length > 0) conditions.push(sql`${nodes.id} <> all(${sql.param(params.exclude)}::uuid[])`);
  const [row] = await db
    .select()
    .from(nodes)
    .where(and(...conditions))
    .orderBy(
      sql`${activeCount}::float / greatest(${nodes.capacity}, 1)`,
      sql`${nodes.lastAssignedAt} asc nulls first`,
      asc(nodes.id),
    )
    .limit(1)
    .for('update', { of: nodes, skipLocked: true });
  return row;
}

export async function markAssigned(db: DbOrTx, nodeId: string, at: Date): Promise<void> {
  await db.update(nodes).set({ lastAssignedAt: at }).where(eq(nodes.id, nodeId));
}

export type NodeWithLoad = NodeRow & { running: number };

/** Every node with its active task count, for the API and admin page. */
export async function listNodesWithLoad(db: DbOrTx): Promise<NodeWithLoad[]> {
  return db
    .select({
      id: nodes.id,
      name: nodes.name,
      url: nodes.url,
      labels: nodes.labels,
      capacity: nodes.capacity,
      status: nodes.status,
      lastHeartbeatAt: nodes.lastHeartbeatAt,
      lastAssignedAt: nodes.lastAssignedAt,
      tokenHash: nodes.tokenHash,
      signingSecret: nodes.signingSecret,
      createdAt: nodes.createdAt,
      updatedAt: nodes.updatedAt,
      running: activeCount,
    })
    .from(nodes)
    .orderBy(asc(nodes.name));
}

/** Whether any node could take an unlabeled task right now: a cheap check before scanning the queue. */
export async function anyNodeHasRoom(db: DbOrTx, onlineSince: Date): Promise<boolean> {
  const [row] = await db
    .select({ id: nodes.id })
    .from(nodes)
    .where(and(eq(nodes.status, 'active'), gt(nodes.lastHeartbeatAt, onlineSince), gt(nodes.capacity, activeCount)))
    .limit(1);
  return row !== undefined;
}
