import { compareAndSetTask, getTask, getTaskContext } from '../db/queries/tasks.js';
import type { TaskRow } from '../db/schema.js';
import type { ReportBranchRequest } from '../protocol/node-api.js';
import { branchForTask } from '../protocol/task-branch.js';
import { DomainError } from './errors.js';
import { moveIssue } from './issues.js';
import { failureOutcome } from './outcomes.js';
import { expectTransition } from './state-machine.js';
import { taskTransition } from './task-status.js';
import type { FailureKind } from './outcomes.js';
import type { TaskDeps } from './tasks.js';
import { emit } from './tasks.js';
import { failTask, isActive } from './task-end.js';
import { recordOpenPullRequest } from './open-pr-effect.js';
import { afterSettle, revocationNotBefore, type Settled, settleRun } from './candidate-settle.js';
import { lockRunOfTask } from '../db/queries/candidate-runs.js';
import { awaitChecksIfJudged } from './candidate-checks.js';

/**
 * The failure kind a node's failed report is recorded as. Only a network failure talking to the
 * git remote is the infrastructure's fault; a task the node cancelled (it was stopping, or told
 * to) is a cancel, as a cancel from here would be; everything else (no changes, the agent, a
 * refused token) would fail the same way again, so it stays `agent_failed` and is never retried alone.
 */
export function reportedFailureKind(report: Pick<ReportBranchRequest, 'failure_code'>): FailureKind {
  if (report.failure_code === 'git_network') return 'git_network';
  return report.failure_code === 'cancelled' ? 'cancelled' : 'agent_failed';
}

/** How a report was taken. */
export type ReportResult = { kind: 'recorded'; task: TaskRow } | { kind: 'duplicate'; task: TaskRow };

/**
 * Takes a node's report for a task it holds. Success records the branch and, with a GitHub
 * installation, the `open_pr` effect in one transaction and answers at once; the effect worker
 * opens the pull request and moves the issue to `pending_merge`. Failure moves the issue to `terminated`.
 * An identical repeat is a no-op; a report for a task that is no longer current is a conflict.
 */
export async function reportBranch(
  deps: TaskDeps,
  params: { nodeId: string; issueId: string; report: ReportBranchRequest & { branch_name: string } },
): Promise<ReportResult> {
  const { report } = params;
  const ctx = await getTaskContext(deps.db, report.task_id);
  if (!ctx || ctx.task.issueId !== params.issueId) {
    throw new DomainError('not_found', `task ${report.task_id} not found for issue ${params.issueId}`);
  }
  if (ctx.task.nodeId !== params.nodeId) {
    throw new DomainError('forbidden', 'this node does not hold the task');
  }
  const { task } = ctx;
  // Stored trimmed, so a repeat is compared the same way.
  const failMessage = report.error_message?.trim() || 'failed';
  const failKind = reportedFailureKind(report);
  if (task.status === 'success' || task.status === 'failed') {
    const same =
      (task.status === 'success' && report.status === 'success' && task.resultBranch === report.branch_name) ||
      (task.status === 'failed' && report.status === 'failed' && task.failureKind === failKind &&
        task.errorMessage === failMessage);
    if (same) return { kind: 'duplicate', task };
    throw new DomainError('stale_attempt', `task ${task.id} is already ${task.status}; this report is not current`, {
      details: { task_status: task.status },
    });
  }

  if (report.status === 'failed') {
    const r = await failTask(deps, {
      taskId: task.id,
      kind: failKind,
      message: failMessage,
      nodeId: params.nodeId,
      outcome: failureOutcome(failKind, report.failure_code),
      usage: report.usage,
      networkRefused: report.network_refused,
    });
    if (r.kind !== 'ended') throw new DomainError('stale_attempt', `task ${task.id} is no longer current`);
    return { kind: 'recorded', task: r.task };
  }

  if (!report.branch_name) throw new DomainError('invalid_input', 'branch_name: required when status is success');
  let pr: { number: number; url: string } | undefined;
  if (task.kind === 'follow_up') {
    // The commit went onto the pull request's own branch: the pull request is the one it had.
    if (report.branch_name !== task.headBranch) {
      throw new DomainError('invalid_input', `branch_name: a follow-up pushes to ${task.headBranch ?? 'its pull request branch'}`);
    }
    pr = task.prNumber !== null && task.prUrl !== null ? { number: task.prNumber, url: task.prUrl } : undefined;
  } else if (report.branch_name !== branchForTask(ctx.issue.number, task)) {
    // Only the branch the task was given: a node that names another (a default branch, another
    // pull request's) gets no pull request from it.
    throw new DomainError('invalid_input', `branch_name: this task pushes to ${branchForTask(ctx.issue.number, task)}`);
  }
  // With a GitHub installation the pull request is opened by the outbox, recorded here in the
  // same transaction: the node gets its answer without waiting on GitHub, and a crash after the
  // commit still opens the pull request (once). The issue waits in `processing` until then.
  const installationId = ctx.repository.installationId;
  const viaOutbox = task.kind === 'issue' && deps.pullRequests !== undefined && installationId !== null;
  let settled: Settled | undefined;

  const done = await deps.db.transaction(async (tx) => {
    // A candidate's run before the candidate, as every end of a candidate takes them (see lockRunOfTask).
    if (task.runId !== null) await lockRunOfTask(tx, task.id);
    const current = await getTask(tx, task.id, { forUpdate: true });
    if (!current || current.nodeId !== params.nodeId || !isActive(current.status)) return undefined;
    // A node may report before the server recorded its 202: accept, then succeed.
    const from = current.status === 'pending' ? expectTransition(`task ${task.id}`, taskTransition('pending', 'accept')) : current.status;
    const to = expectTransition(`task ${task.id}`, taskTransition(from, 'succeed'));
    const now = deps.now();
    const row = await compareAndSetTask(tx, {
      id: task.id,
      from: current.status,
      nodeId: params.nodeId,
      set: {
        status: to,
        resultBranch: report.branch_name,
        completedAt: now,
        startedAt: current.startedAt ?? now,
        prNumber: pr?.number ?? null,
        prUrl: pr?.url ?? null,
        outcome: 'success',
        ...(report.usage ? { usage: report.usage } : {}),
        ...(report.network_refused ? { networkRefused: report.network_refused } : {}),
        // Stored with the success: the pull request body (opened by the outbox) says what the change touches.
        change: report.change ?? null,
        verifyResults: report.verify ?? null,
      },
    });
    if (!row) return undefined;
    // A candidate's branch gets a pull request only if its run picks it.
    if (task.kind === 'candidate') {
      // Judged by the repository's checks, the run waits for this commit's suites before judging it.
      await awaitChecksIfJudged(tx, { task: row, branch: report.branch_name!, sha: report.head_sha, now });
      settled = await settleRun(tx, deps, task.runId!);
    }
    else if (viaOutbox) {
      await recordOpenPullRequest(tx, { installationId: installationId!, taskId: task.id, issueId: task.issueId, branch: report.branch_name!, now });
    } else if (task.kind === 'issue') {
      await moveIssue(tx, task.issueId, 'succeed');
    }
    return row;
  });
  if (!done) throw new DomainError('stale_attempt', `task ${task.id} is no longer current`);
  if (viaOutbox) deps.wakeEffects?.();
  // The branch is pushed and reported: the node needs the token no longer.
  await deps.taskTokens.revokeForTask(task.id, { notBefore: revocationNotBefore(task, settled, deps.now()) });
  deps.logger.info({ taskId: task.id, branch: report.branch_name, pr: pr?.number }, 'task succeeded');
  emit(deps, 'succeeded', done);
  await afterSettle(deps, settled);
  return { kind: 'recorded', task: done };
}
