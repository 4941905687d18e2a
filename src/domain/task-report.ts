import { compareAndSetTask, getTask, getTaskContext, recordPushedChange, setReportClaim } from '../db/queries/tasks.js';
import type { TaskRow } from '../db/schema.js';
import type { ReportBranchRequest } from '../protocol/node-api.js';
import { taskBranch } from '../protocol/task-branch.js';
import { DomainError, isDomainError } from './errors.js';
import { moveIssue } from './issues.js';
import { failureOutcome } from './outcomes.js';
import { expectTransition } from './state-machine.js';
import { taskTransition } from './task-status.js';
import type { FailureKind } from './outcomes.js';
import type { TaskDeps } from './tasks.js';
import { emit } from './tasks.js';
import { failTask, isActive, claimHeld, REPORT_CLAIM_MS } from './task-end.js';

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
 * Takes a node's report for a task it holds. Success opens (or finds) the pull request first,
 * then records the branch and moves the issue to `pending_merge`, so a GitHub outage leaves
 * nothing half-written: the node retries the report. Failure moves the issue to `terminated`.
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
  // Claim the task under its lock before GitHub is called: while the claim holds, nothing else
  // ends it (cancel, timeout, node lost), so no pull request is opened for a task that has ended.
  const claimedAt = deps.now();
  const pushed = { change: report.change ?? null, verifyResults: report.verify ?? null };
  const claim = await deps.db.transaction(async (tx) => {
    const current = await getTask(tx, task.id, { forUpdate: true });
    if (!current || current.nodeId !== params.nodeId || !isActive(current.status)) return 'ended' as const;
    if (claimHeld(current, claimedAt)) return 'busy' as const;
    await setReportClaim(tx, task.id, new Date(claimedAt.getTime() + REPORT_CLAIM_MS));
    // Before the pull request is opened: its body says what the change touches.
    await recordPushedChange(tx, task.id, pushed);
    return 'claimed' as const;
  });
  if (claim === 'ended') throw new DomainError('stale_attempt', `task ${task.id} is no longer current`);
  if (claim === 'busy') {
    throw new DomainError('upstream_unavailable', `another report for task ${task.id} is opening its pull request; try again shortly`);
  }

  let pr: { number: number; url: string } | undefined;
  if (task.kind === 'follow_up') {
    // The commit went onto the pull request's own branch: the pull request is the one it had.
    if (report.branch_name !== task.headBranch) {
      await setReportClaim(deps.db, task.id, null);
      throw new DomainError('invalid_input', `branch_name: a follow-up pushes to ${task.headBranch ?? 'its pull request branch'}`);
    }
    pr = task.prNumber !== null && task.prUrl !== null ? { number: task.prNumber, url: task.prUrl } : undefined;
  } else if (report.branch_name !== taskBranch(ctx.issue.number, task.id)) {
    // Only the branch the task was given: a node that names another (a default branch, another
    // pull request's) gets no pull request from it.
    await setReportClaim(deps.db, task.id, null);
    throw new DomainError('invalid_input', `branch_name: this task pushes to ${taskBranch(ctx.issue.number, task.id)}`);
  } else if (deps.pullRequests && ctx.repository.installationId !== null) {
    try {
      pr = await deps.pullRequests.ensurePullRequest({
        repository: ctx.repository,
        issue: ctx.issue,
        task: { ...task, ...pushed },
        branch: report.branch_name,
      });
    } catch (err) {
      if (isDomainError(err, 'upstream_unavailable')) {
        await setReportClaim(deps.db, task.id, null);
        throw err;
      }
      const message = `could not open the pull request: ${(err as Error).message}`;
      const r = await failTask(deps, {
        taskId: task.id,
        kind: 'pull_request_failed',
        message,
        nodeId: params.nodeId,
        overrideClaim: true,
        usage: report.usage,
        networkRefused: report.network_refused,
      });
      if (r.kind !== 'ended') throw new DomainError('stale_attempt', `task ${task.id} is no longer current`);
      return { kind: 'recorded', task: r.task };
    }
  }

  const done = await deps.db.transaction(async (tx) => {
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
        reportClaimedUntil: null,
      },
    });
    if (!row) return undefined;
    if (task.kind !== 'follow_up') await moveIssue(tx, task.issueId, 'succeed');
    return row;
  });
  if (!done && pr && task.kind !== 'follow_up') await closeLostPullRequest(deps, { ctx, taskId: task.id, pr });
  if (!done) throw new DomainError('stale_attempt', `task ${task.id} is no longer current`);
  // The branch is pushed and reported: the node needs the token no longer.
  await deps.taskTokens.revokeForTask(task.id);
  deps.logger.info({ taskId: task.id, branch: report.branch_name, pr: pr?.number }, 'task succeeded');
  emit(deps, 'succeeded', done);
  if (pr && task.kind !== 'follow_up') emit(deps, 'pr_opened', done);
  return { kind: 'recorded', task: done };
}

/**
 * The task ended while its pull request was being opened (the claim ran out first): the pull
 * request belongs to nothing, so it is closed, with a comment saying why. Failing to close it
 * is logged, not thrown: the report is refused as stale either way.
 */
async function closeLostPullRequest(
  deps: TaskDeps,
  params: { ctx: NonNullable<Awaited<ReturnType<typeof getTaskContext>>>; taskId: string; pr: { number: number; url: string } },
): Promise<void> {
  const current = await getTask(deps.db, params.taskId);
  const why = current?.status === 'failed' ? `it ended as failed (${current.failureKind ?? 'unknown'})` : 'it is no longer current';
  const comment = `Gaffer closed this pull request: task ${params.taskId} for #${params.ctx.issue.number} had ended before its report was recorded; ${why}. Comment \`/start\` on the issue to try again.`;
  try {
    await deps.pullRequests?.closePullRequest({ repository: params.ctx.repository, number: params.pr.number, comment });
    deps.logger.warn({ taskId: params.taskId, pr: params.pr.number }, 'closed a pull request opened for a task that had ended');
  } catch (err) {
    deps.logger.error({ err, taskId: params.taskId, pr: params.pr.number }, 'could not close a pull request opened for a task that had ended');
  }
}

