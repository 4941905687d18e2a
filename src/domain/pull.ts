import { touchHeartbeat } from '../db/queries/nodes.js';
import { compareAndSetTask, getTask, oldestOfferedTask, tasksHeldByNode } from '../db/queries/tasks.js';
import type { NodeRow, TaskRow } from '../db/schema.js';
import { maskSecrets } from '../logger.js';
import type { ProcessIssueRequest } from '../protocol/node-api.js';
import { resolveTaskCredential } from './credentials.js';
import { DomainError, isDomainError } from './errors.js';
import { processIssueBody, requeue } from './delivery.js';
import { expectTransition } from './state-machine.js';
import { taskTransition } from './task-status.js';
import { failTask } from './task-end.js';
import { type TaskDeps } from './tasks.js';

/**
 * Pull mode, the second transport: the scheduler assigns tasks to pull nodes exactly as to push
 * nodes (same queue, same row-locked selection); instead of a POST to the node, the node's long
 * poll collects the assignment here, and its ack moves the task to `running`.
 */

/** A pull node's poll counts as its heartbeat for liveness. Returns the node as it is now. */
export async function recordPoll(deps: Pick<TaskDeps, 'db'>, node: NodeRow, now: Date): Promise<NodeRow> {
  const row = await touchHeartbeat(deps.db, node.id, now);
  if (!row) throw new DomainError('not_found', 'node was removed');
  return row;
}

/** What one look at a pull node's work found. */
export type ClaimResult = {
  /** The seed's body for the oldest task assigned to the node, or null. */
  task: ProcessIssueRequest | null;
  /** Tasks the node runs that the server no longer holds it to. */
  cancelTaskIds: string[];
};

/**
 * Looks for a pull node's work: cancels for tasks it runs that are no longer its own, and, when
 * it has a free slot, the oldest task assigned to it, with a credential minted for that task now.
 * A credential that cannot be had fails or requeues the task as a push delivery would. The task
 * stays `pending` until the node acknowledges it; the same task is offered again until then.
 */
export async function claimForNode(
  deps: TaskDeps,
  params: { node: NodeRow; runningTaskIds: string[]; freeSlots: number },
): Promise<ClaimResult> {
  const { node } = params;
  const held = new Set((await tasksHeldByNode(deps.db, node.id, params.runningTaskIds)).map((t) => t.id));
  const cancelTaskIds = params.runningTaskIds.filter((id) => !held.has(id));
  // Once assigned, a task is handed out even if the node was drained since: draining stops new
  // assignments, not the ones already made.
  if (params.freeSlots <= 0) return { task: null, cancelTaskIds };
  // Each pass either returns or moves the task it looked at off this node, so this ends.
  for (;;) {
    const ctx = await oldestOfferedTask(deps.db, node.id, params.runningTaskIds);
    if (!ctx) return { task: null, cancelTaskIds };
    const { task } = ctx;
    try {
      const credential = await resolveTaskCredential({ ...deps.credentials, db: deps.db }, ctx.repository, node);
      if (credential.source === 'installation') {
        // Kept before it leaves, as for a push delivery, so it is revoked however the task ends.
        try {
          await deps.taskTokens.record({
            taskId: task.id,
            installationId: ctx.repository.installationId,
            token: credential.token,
            expiresAt: credential.expiresAt ?? new Date(deps.now().getTime() + 3600_000),
          });
        } catch (err) {
          await deps.credentials.installationTokens?.revoke(credential.token);
          throw err;
        }
      }
      return { task: processIssueBody(ctx, credential.token), cancelTaskIds };
    } catch (err) {
      const message = maskSecrets((err as Error).message);
      if (isDomainError(err, 'upstream_unavailable')) await requeue(deps, task, node, `credential: ${message}`);
      else await failTask(deps, { taskId: task.id, kind: 'credential_unavailable', message, nodeId: node.id });
    }
  }
}

/**
 * A pull node takes a task it claimed: `pending` → `running`, only while the task is still
 * assigned to it. A repeat is answered the same; a task that went back to the queue (the ack came
 * after the dispatch timeout) or ended is a `conflict`, and the node must not run it.
 */
export async function acknowledgeTask(deps: TaskDeps, params: { node: NodeRow; taskId: string }): Promise<TaskRow> {
  const task = await getTask(deps.db, params.taskId);
  const gone = () =>
    new DomainError('conflict', `task ${params.taskId} is no longer assigned to this node; do not run it`, {
      details: { task_status: task?.status ?? null },
    });
  if (!task || task.nodeId !== params.node.id) throw gone();
  if (task.status === 'running') return task;
  if (task.status !== 'pending') throw gone();
  const to = expectTransition(`task ${task.id}`, taskTransition('pending', 'accept'));
  const row = await compareAndSetTask(deps.db, {
    id: task.id,
    from: 'pending',
    nodeId: params.node.id,
    set: { status: to, startedAt: deps.now(), errorMessage: null },
  });
  if (!row) throw gone();
  deps.logger.info({ taskId: task.id, node: params.node.name }, 'task running (claimed by a pull node)');
  deps.onEvent({ type: 'running', taskId: task.id, issueId: task.issueId });
  return row;
}
