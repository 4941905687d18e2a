import { deleteNode, updateNode } from '../db/queries/nodes.js';
import { activeTasksOnNode, deleteOfflineEphemeralNodes } from '../db/queries/ephemeral-nodes.js';
import { compareAndSetTask } from '../db/queries/tasks.js';
import type { NodeRow } from '../db/schema.js';
import { DomainError } from './errors.js';
import { nodeTransition } from './node-status.js';
import { failTask } from './task-end.js';
import type { TaskDeps } from './tasks.js';

/**
 * Ephemeral nodes (`--ephemeral`, registered with a token marked ephemeral) take one task and
 * leave: the node deregisters itself when it exits, and the sweep removes one that died without
 * doing so once it has been silent for the heartbeat timeout. Their tasks keep their history:
 * `tasks.node_id` is set null when the row goes.
 */

/** What a deregistration did with the tasks the node still held. */
export type DeregisterResult = { released: number; failed: number };

/**
 * An ephemeral node removes itself. First it is marked `stopping`, which waits for any assignment
 * under way on its row and keeps the scheduler from choosing it again; then a task it was offered
 * but never acknowledged goes back to the queue as it was (no attempt is spent: it never ran), and
 * a task it acknowledged but did not report is failed as `node_lost` (retried by the usual rule);
 * then the row goes. Only ephemeral nodes may do this: other nodes are removed by an admin.
 */
export async function deregisterNode(
  deps: Pick<TaskDeps, 'db' | 'now' | 'settings' | 'onEvent' | 'logger' | 'taskTokens'>,
  node: NodeRow,
): Promise<DeregisterResult> {
  if (!node.ephemeral) {
    throw new DomainError('conflict', 'only ephemeral nodes deregister themselves; an admin removes other nodes (drain, then remove)');
  }
  const stop = nodeTransition(node.status, 'shut_down');
  if (stop.ok) await updateNode(deps.db, node.id, { status: stop.to });
  let released = 0;
  let failed = 0;
  for (const task of await activeTasksOnNode(deps.db, node.id)) {
    if (task.status === 'pending') {
      const row = await compareAndSetTask(deps.db, { id: task.id, from: 'pending', nodeId: node.id, set: { nodeId: null } });
      if (!row) continue;
      released++;
      // A credential minted when it was offered is not the one the next node gets.
      await deps.taskTokens.revokeForTask(task.id);
      deps.onEvent({ type: 'requeued', taskId: task.id, issueId: task.issueId });
    } else {
      const r = await failTask(deps, {
        taskId: task.id,
        kind: 'node_lost',
        message: `node lost: ${node.name} deregistered while it held the task`,
        nodeId: node.id,
      });
      if (r.kind === 'ended') failed++;
    }
  }
  await deleteNode(deps.db, node.id);
  deps.logger.info({ node: node.name, released, failed }, 'ephemeral node deregistered');
  return { released, failed };
}

/** The sweep's part: ephemeral nodes silent since `silentSince` and holding nothing are removed. */
export async function removeOfflineEphemeralNodes(deps: Pick<TaskDeps, 'db' | 'logger'>, silentSince: Date): Promise<number> {
  const removed = await deleteOfflineEphemeralNodes(deps.db, silentSince);
  for (const n of removed) deps.logger.info({ node: n.name }, 'ephemeral node went offline without deregistering; removed');
  return removed.length;
}
