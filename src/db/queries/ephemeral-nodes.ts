import { and, eq, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import { ACTIVE_TASK_STATUSES } from '../../protocol/statuses.js';
import { nodes, tasks, type NodeRow, type TaskRow } from '../schema.js';
import type { DbOrTx } from '../types.js';

/** The tasks a node still holds (pending: offered or assigned; running: acknowledged). */
export async function activeTasksOnNode(db: DbOrTx, nodeId: string): Promise<TaskRow[]> {
  return db
    .select()
    .from(tasks)
    .where(and(eq(tasks.nodeId, nodeId), inArray(tasks.status, ACTIVE_TASK_STATUSES)));
}

/**
 * Removes ephemeral nodes silent since `silentSince` that hold no active task, in one statement,
 * and returns them. A node still holding a task is left to the lost-task and unacknowledged sweeps,
 * which free its tasks first; the next sweep removes it.
 */
export async function deleteOfflineEphemeralNodes(db: DbOrTx, silentSince: Date): Promise<Array<Pick<NodeRow, 'id' | 'name'>>> {
  return db
    .delete(nodes)
    .where(
      and(
        eq(nodes.ephemeral, true),
        or(isNull(nodes.lastHeartbeatAt), lt(nodes.lastHeartbeatAt, silentSince)),
        sql`not exists (select 1 from ${tasks} where ${tasks.nodeId} = ${nodes.id} and ${tasks.status} in ('pending', 'running'))`,
      ),
    )
    .returning({ id: nodes.id, name: nodes.name });
}
