import { and, asc, count, eq, getTableColumns, gt, lt, sql } from 'drizzle-orm';
import { ACTIVE_TASK_STATUSES } from '../../protocol/statuses.js';
import { nodes, tasks, type NodeRow, type TaskRow } from '../schema.js';
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

export async function getNodeByName(db: DbOrTx, name: string, opts: { forUpdate?: boolean } = {}): Promise<NodeRow | undefined> {
  const q = db.select().from(nodes).where(eq(nodes.name, name));
  const [row] = opts.forUpdate ? await q.for('update') : await q;
  return row;
}

export async function getNodeByTokenHash(db: DbOrTx, tokenHash: string): Promise<NodeRow | undefined> {
  const [row] = await db.select().from(nodes).where(eq(nodes.tokenHash, tokenHash));
  return row;
}

export async function updateNode(
  db: DbOrTx,
  id: string,
  values: Partial<
    Pick<
      NodeRow,
      | 'name'
      | 'url'
      | 'labels'
      | 'capacity'
      | 'status'
      | 'tokenHash'
      | 'signingSecret'
      | 'lastHeartbeatAt'
      | 'mode'
      | 'allowedLabels'
      | 'maxCapacity'
      | 'registrationTokenId'
      | 'sandbox'
      | 'ephemeral'
    >
  >,
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

/** Records a heartbeat, and the node's sandbox mode when it reports one. */
export async function touchHeartbeat(
  db: DbOrTx,
  id: string,
  at: Date,
  sandbox?: NodeRow['sandbox'] | undefined,
): Promise<NodeRow | undefined> {
  const [row] = await db
    .update(nodes)
    .set(sandbox === undefined ? { lastHeartbeatAt: at } : { lastHeartbeatAt: at, sandbox })
    .where(eq(nodes.id, id))
    .returning();
  return row;
}

/**
 * The statuses that hold a node, written as literals rather than bound parameters: only then can
 * Postgres prove the partial index `tasks_node_active_idx` applies in a generic (cached) plan, as
 * postgres.js's prepared statements may get; with parameters such a plan scans every task ever run.
 */
const holdsNode = sql`${tasks.status} in (${sql.raw(ACTIVE_TASK_STATUSES.map((s) => `'${s}'`).join(', '))})`;

/**
 * Tasks a node holds as `running` that the server recorded as started before `startedBefore`, for
 * the heartbeat's per-task lease. The status is a literal for the same partial-index reason.
 */
export async function runningTasksOnNodeStartedBefore(db: DbOrTx, nodeId: string, startedBefore: Date): Promise<TaskRow[]> {
  return db
    .select()
    .from(tasks)
    .where(and(eq(tasks.nodeId, nodeId), sql`${tasks.status} = 'running'`, lt(tasks.startedAt, startedBefore)));
}

/** Active (pending or running) tasks held by one node, counted fresh. */
export async function countActiveTasksOnNode(db: DbOrTx, nodeId: string): Promise<number> {
  const [row] = await db
    .select({ n: count() })
    .from(tasks)
    .where(and(eq(tasks.nodeId, nodeId), holdsNode));
  return row?.n ?? 0;
}

/**
 * A node's active task count, for selects from `nodes` alone. The outer column is qualified by
 * hand: in a single-table select Drizzle writes columns bare, and a bare `"id"` inside this
 * subquery would be the task's id, counting nothing.
 */
const activeCount = sql<number>`(select count(*)::int from ${tasks} where ${tasks.nodeId} = ${sql.identifier('nodes')}.${sql.identifier('id')} and ${holdsNode})`;

export type NodeWithLoad = NodeRow & { running: number };

/** Every node with its active task count, for the API and admin page. */
export async function listNodesWithLoad(db: DbOrTx): Promise<NodeWithLoad[]> {
  return db
    .select({
      ...getTableColumns(nodes),
      running: activeCount,
    })
    .from(nodes)
    .orderBy(asc(nodes.name));
}

/** Whether an active node heard from since `onlineSince` carries every one of these labels (say, `agent:codex`). */
export async function anyOnlineNodeWithLabels(db: DbOrTx, labels: string[], onlineSince: Date): Promise<boolean> {
  const [row] = await db
    .select({ id: nodes.id })
    .from(nodes)
    .where(
      and(
        eq(nodes.status, 'active'),
        gt(nodes.lastHeartbeatAt, onlineSince),
        sql`${nodes.labels} @> ${sql.param(labels, nodes.labels)}`,
      ),
    )
    .limit(1);
  return row !== undefined;
}
