import { compareAndSetTask, getTask, getTaskContext, insertTask, nextAttemptNumber, recentInfraFailures } from '../db/queries/tasks.js';
import type { TaskRow } from '../db/schema.js';
import type { AgentUsage, NetworkRefused } from '../protocol/node-api.js';
import { afterSettle, revocationNotBefore, type Settled, settleRun } from './candidate-settle.js';
import { copyOfTask } from './candidate-start.js';
import { lockRunOfTask } from '../db/queries/candidate-runs.js';
import { DomainError } from './errors.js';
import { moveIssue } from './issues.js';
import { failureOutcome, type TaskOutcome } from './outcomes.js';
import { expectTransition } from './state-machine.js';
import { taskTransition } from './task-status.js';
import { INFRA_FAILURES } from './outcomes.js';
import type { FailureKind } from './outcomes.js';
import type { TaskDeps, StartActor } from './tasks.js';
import { mayControl, emit } from './tasks.js';

/** How ending a task went. */
export type EndResult =
  | { kind: 'ended'; task: TaskRow; requeued: TaskRow | undefined }
  | { kind: 'not_active'; task: TaskRow | undefined };

/** Whether a task may still end: queued or running. */
export const isActive = (status: TaskRow['status']) => status === 'pending' || status === 'running';

/**
 * Fails an active task, moving the issue to `terminated`, or, for infrastructure failures
 * while the retry budget lasts, queueing a new attempt with the issue left `processing`.
 */
export async function failTask(
  deps: Pick<TaskDeps, 'db' | 'now' | 'settings' | 'onEvent' | 'logger' | 'taskTokens'> & Partial<Pick<TaskDeps, 'pullRequests' | 'transport' | 'wakeEffects'>>,
  params: {
    taskId: string;
    kind: FailureKind;
    message: string;
    nodeId?: string;
    /** Decided from the kind when absent (see {@link failureOutcome}). */
    outcome?: TaskOutcome;
    usage?: AgentUsage | undefined;
    networkRefused?: NetworkRefused | undefined;
  },
): Promise<EndResult> {
  let settled: Settled | undefined;
  const result = await deps.db.transaction(async (tx): Promise<EndResult> => {
    await lockRunOfTask(tx, params.taskId);
    const task = await getTask(tx, params.taskId, { forUpdate: true });
    if (!task || (task.status !== 'pending' && task.status !== 'running')) return { kind: 'not_active', task };
    if (params.nodeId !== undefined && task.nodeId !== params.nodeId) return { kind: 'not_active', task };
    const to = expectTransition(`task ${task.id}`, taskTransition(task.status, 'fail'));
    const failed = await compareAndSetTask(tx, {
      id: task.id,
      from: task.status,
      set: {
        status: to,
        errorMessage: params.message,
        failureKind: params.kind,
        outcome: params.outcome ?? failureOutcome(params.kind),
        ...(params.usage ? { usage: params.usage } : {}),
        ...(params.networkRefused ? { networkRefused: params.networkRefused } : {}),
        completedAt: deps.now(),
      },
    });
    if (!failed) return { kind: 'not_active', task };
    const infra = (INFRA_FAILURES as readonly string[]).includes(params.kind);
    const budget = task.autoRetry ?? deps.settings.autoRetryInfraFailures;
    if (infra && budget > 0) {
      const streak = await recentInfraFailures(tx, task.issueId, INFRA_FAILURES);
      if (streak <= budget) {
        const requeued = await insertTask(tx, {
          ...copyOfTask(task),
          attempt: await nextAttemptNumber(tx, task.issueId),
          trigger: 'retry',
          nextDispatchAt: deps.now(),
        });
        return { kind: 'ended', task: failed, requeued };
      }
    }
    // A candidate's end is its run's to judge: the issue moves when the run is decided.
    if (task.kind === 'candidate') settled = await settleRun(tx, deps, task.runId!);
    // A follow-up's failure leaves the pull request, and so the issue (`pending_merge`), as it was.
    else if (task.kind !== 'follow_up') await moveIssue(tx, task.issueId, 'fail');
    return { kind: 'ended', task: failed, requeued: undefined };
  });
  if (result.kind === 'ended') {
    // However it failed (a report, a cancel, a timeout, a lost node, a delivery given up), the
    // token minted for it has nothing more to do.
    await deps.taskTokens.revokeForTask(params.taskId, { notBefore: revocationNotBefore(result.task, settled, deps.now()) });
    deps.logger.info({ taskId: params.taskId, kind: params.kind, reason: params.message }, 'task failed');
    emit(deps, params.kind === 'cancelled' ? 'cancelled' : 'failed', result.task);
    if (result.requeued) emit(deps, 'requeued', result.requeued);
    await afterSettle(deps, settled);
  }
  return result;
}

/**
 * Cancels the issue's active task (`/stop`, the API): the task fails as `cancelled`, the issue
 * ends `terminated`, and the node, if one holds it, is told to stop.
 */
export async function cancelTask(
  deps: TaskDeps,
  params: { taskId: string; actor: StartActor },
): Promise<TaskRow> {
  const ctx = await getTaskContext(deps.db, params.taskId);
  if (!ctx) throw new DomainError('not_found', `task ${params.taskId} not found`);
  if (!mayControl(params.actor, ctx.issue)) {
    throw new DomainError('forbidden', 'only an admin or the issue owner may cancel this task');
  }
  const result = await failTask(deps, { taskId: params.taskId, kind: 'cancelled', message: 'cancelled' });
  if (result.kind !== 'ended') {
    throw new DomainError('illegal_transition', `task is ${ctx.task.status}: only pending or running tasks can be cancelled`);
  }
  if (ctx.node) {
    const node = ctx.node;
    void deps.transport.cancel(node, params.taskId).then(
      (r) => r.kind !== 'accepted' && deps.logger.warn({ taskId: params.taskId, node: node.name, result: r }, 'node did not take the cancel'),
    );
  }
  return result.task;
}

