import { getIssueWithRepository } from '../db/queries/issues.js';
import {
  compareAndSetTask,
  getTask,
  getTaskContext,
  insertTask,
  latestPullRequestTask,
  nextAttemptNumber,
  recentInfraFailures,
  setReportClaim,
} from '../db/queries/tasks.js';
import type { IssueRow, TaskRow } from '../db/schema.js';
import type { Db, DbOrTx } from '../db/types.js';
import type { TaskCaps } from '../db/queries/caps.js';
import { isUniqueViolation } from '../db/unique-violation.js';
import type { Logger } from '../logger.js';
import type { AgentUsage, NetworkRefused, ReportBranchRequest } from '../protocol/node-api.js';
import { taskBranch } from '../protocol/task-branch.js';
import { type CredentialDeps, credentialAvailable } from './credentials.js';
import { DomainError, isDomainError } from './errors.js';
import { canStart } from './issue-status.js';
import { moveIssue } from './issues.js';
import { queueInfo, type QueueView } from './queue-info.js';
import { failureOutcome, type TaskOutcome } from './outcomes.js';
import { type RepoTaskCaps, sandboxSettingsFor, type TaskSandboxSettings } from './repo-config.js';
import type { NodeTransport, PullRequests, TaskEvent, TaskEventListener } from './ports.js';
import { expectTransition } from './state-machine.js';
import type { TaskTokens } from './task-tokens.js';
import { taskTransition } from './task-status.js';
import type { Actor } from './users.js';

/**
 * Failure kinds that are the infrastructure's fault, and so may be retried automatically:
 * a lost or unreachable node, and a clone, fetch or push that could not reach the remote.
 */
export const INFRA_FAILURES = ['node_lost', 'dispatch_failed', 'git_network'] as const;

/** Why a task failed. */
export type FailureKind =
  | (typeof INFRA_FAILURES)[number]
  | 'timeout'
  | 'cancelled'
  | 'agent_failed'
  | 'credential_unavailable'
  | 'pull_request_failed';

/** Tuning for queueing, leases and retries, from config. */
export type SchedulerSettings = {
  heartbeatTimeoutMs: number;
  taskTimeoutMs: number;
  dispatchMaxAttempts: number;
  dispatchTimeoutMs: number;
  autoRetryInfraFailures: number;
  taskLogMaxBytes: number;
  /** Per repository and installation; absent or 0: no cap. */
  caps?: TaskCaps | undefined;
};

/** Everything the task lifecycle talks to. */
export type TaskDeps = {
  db: Db;
  logger: Logger;
  now: () => Date;
  settings: SchedulerSettings;
  credentials: Omit<CredentialDeps, 'db'>;
  transport: NodeTransport;
  pullRequests: PullRequests | undefined;
  /** Installation tokens minted for tasks, revoked as each task ends. */
  taskTokens: TaskTokens;
  onEvent: TaskEventListener;
};

/** Who asks for a start: a signed-in user, a GitHub user already checked by the App, or Gaffer. */
export type StartActor = Actor | { kind: 'github'; login: string } | { kind: 'system' };

/** The seed's TaskPublic, plus attempt, PR and queue position. */
export type TaskPublic = {
  id: string;
  issue_id: string;
  node_id: string | null;
  status: TaskRow['status'];
  command: string;
  result_branch: string | null;
  error_message: string | null;
  failure_kind: string | null;
  /** How it ended (see TASK_OUTCOMES); null while queued or running. */
  outcome: TaskOutcome | null;
  /** Tokens and cost the agent reported. */
  usage: AgentUsage | null;
  attempt: number;
  /** `issue`, or `follow_up`: a run on the open pull request's branch. */
  kind: TaskRow['kind'];
  agent: string | null;
  model: string | null;
  base_branch: string | null;
  head_branch: string | null;
  pr_number: number | null;
  pr_url: string | null;
  queue_position: number | null;
  /** Why a queued task waits beyond its turn (a repository or installation cap), or null. */
  queue_reason: string | null;
  /** Seconds until a queued task should start, from recent tasks' median run time; null when unknown. */
  queue_eta_seconds: number | null;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  completed_at: string | null;
};

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export async function toTaskPublic(db: DbOrTx, task: TaskRow, view?: QueueView): Promise<TaskPublic> {
  const queue = await queueInfo(db, task, view);
  return {
    id: task.id,
    issue_id: task.issueId,
    node_id: task.nodeId,
    status: task.status,
    command: task.command,
    result_branch: task.resultBranch,
    error_message: task.errorMessage,
    failure_kind: task.failureKind,
    outcome: task.outcome,
    usage: task.usage,
    attempt: task.attempt,
    kind: task.kind,
    agent: task.agent,
    model: task.model,
    base_branch: task.baseBranch,
    head_branch: task.headBranch,
    pr_number: task.prNumber,
    pr_url: task.prUrl,
    queue_position: queue.position,
    queue_reason: queue.reason,
    queue_eta_seconds: queue.etaSeconds,
    created_at: task.createdAt.toISOString(),
    updated_at: task.updatedAt.toISOString(),
    started_at: iso(task.startedAt),
    completed_at: iso(task.completedAt),
  };
}

/** The command a bare start uses, as the seed's example has it. */
export function defaultCommand(issue: Pick<IssueRow, 'number'>): string {
  return `process issue #${issue.number}`;
}

/** Whether an actor may start or stop this issue: admins any, other users the issues they own. */
export function mayControl(actor: StartActor, issue: IssueRow): boolean {
  if (actor.kind !== 'user') return true;
  return actor.isAdmin || issue.ownerId === actor.id;
}

function emit(deps: Pick<TaskDeps, 'onEvent' | 'logger'>, type: TaskEvent['type'], task: Pick<TaskRow, 'id' | 'issueId'>) {
  try {
    deps.onEvent({ type, taskId: task.id, issueId: task.issueId });
  } catch (err) {
    deps.logger.warn({ err, type, taskId: task.id }, 'task event listener failed');
  }
}

/**
 * Starts (or restarts) an issue, following the seed's steps: the issue exists and can start, its
 * repository is loaded, a credential can be had, the issue moves to `processing` and the task is
 * created, queued. Node selection and dispatch follow in the scheduler, so a start never fails
 * for want of a free node. One transaction, with the issue row locked, so two concurrent starts
 * make one task.
 */
export async function startIssue(
  deps: Pick<TaskDeps, 'db' | 'credentials' | 'onEvent' | 'logger' | 'now'>,
  params: {
    issueId: string;
    actor: StartActor;
    command?: string | undefined;
    labels?: string[] | undefined;
    trigger: string;
    autoRetry?: number | undefined;
    draftPr?: boolean | undefined;
    /**
     * From the repository config; without one (API and admin starts), the defaults (no setup, full
     * network) with the repository's own `sandbox` setting.
     */
    sandbox?: TaskSandboxSettings | undefined;
    /** The repository's own caps from its config. */
    repoCaps?: RepoTaskCaps | undefined;
    /** What `/start` (or the repository config) asked for; recorded on the task. */
    options?: TaskRunOptions | undefined;
  },
): Promise<TaskRow> {
  const options = params.options ?? {};
  let task: TaskRow;
  try {
    task = await deps.db.transaction(async (tx) => {
      const found = await getIssueWithRepository(tx, params.issueId, { forUpdate: true });
      if (!found) throw new DomainError('not_found', `issue ${params.issueId} not found`);
      const { issue, repository } = found;
      if (!mayControl(params.actor, issue)) {
        throw new DomainError('forbidden', 'only an admin or the issue owner may start this issue');
      }
      if (!canStart(issue.status)) {
        throw new DomainError('illegal_transition', `issue is ${issue.status}: only pending or terminated issues can be started`, {
          details: { status: issue.status },
        });
      }
      if (!(await credentialAvailable({ ...deps.credentials, db: tx }, repository))) {
        throw new DomainError(
          'not_configured',
          `no credential for ${repository.fullName}: install the GitHub App on it or add a PAT`,
        );
      }
      const sandbox = params.sandbox ?? { ...sandboxSettingsFor(), sandboxRequired: repository.sandbox === 'required' };
      await moveIssue(tx, issue.id, 'start');
      const command = params.command?.trim() || defaultCommand(issue);
      return insertTask(tx, {
        issueId: issue.id,
        command,
        attempt: await nextAttemptNumber(tx, issue.id),
        requiredLabels: params.labels ?? [],
        trigger: params.trigger,
        autoRetry: params.autoRetry ?? null,
        draftPr: params.draftPr ?? false,
        setup: sandbox.setup,
        network: sandbox.network,
        sandboxRequired: sandbox.sandboxRequired,
        repoMaxPerDay: params.repoCaps?.perDay ?? null,
        repoMaxConcurrent: params.repoCaps?.concurrent ?? null,
        agent: options.agent ?? null,
        model: options.model ?? null,
        baseBranch: options.baseBranch ?? null,
        nextDispatchAt: deps.now(),
        requestedBy: params.actor.kind === 'user' ? params.actor.id : null,
        requestedByLogin: params.actor.kind === 'github' ? params.actor.login : params.actor.kind === 'user' ? params.actor.email : null,
      });
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw new DomainError('conflict', 'issue already has an active task', { cause: err });
    throw err;
  }
  emit(deps, 'queued', task);
  return task;
}

/** What a run asked for beyond the repository's defaults: the agent CLI, its model, the base branch. */
export type TaskRunOptions = { agent?: string | undefined; model?: string | undefined; baseBranch?: string | undefined };

/** Why a follow-up runs: `/start` on the pull request, a review asking for changes, or failing CI. */
export type FollowUpTrigger = 'comment' | 'review' | 'ci';

/**
 * Starts a follow-up on the issue's open pull request: a task of kind `follow_up` that checks out
 * the PR's branch at its head and pushes a fast-forward onto it. The issue is `pending_merge` and
 * stays so: the issue machine does not move for a follow-up, whatever its end. The one-active-task
 * index keeps it to one run at a time per issue, like any task.
 */
export async function startFollowUp(
  deps: Pick<TaskDeps, 'db' | 'credentials' | 'onEvent' | 'logger' | 'now'>,
  params: {
    issueId: string;
    actor: StartActor;
    /** The prompt built from the review, the conversation or the failed checks. */
    command: string;
    trigger: FollowUpTrigger;
    /** The pull request it was asked for on: refused unless it is the issue's current one. */
    prNumber?: number | undefined;
    labels?: string[] | undefined;
    autoRetry?: number | undefined;
    sandbox?: TaskSandboxSettings | undefined;
    options?: TaskRunOptions | undefined;
  },
): Promise<TaskRow> {
  const sandbox = params.sandbox ?? sandboxSettingsFor();
  let task: TaskRow;
  try {
    task = await deps.db.transaction(async (tx) => {
      const found = await getIssueWithRepository(tx, params.issueId, { forUpdate: true });
      if (!found) throw new DomainError('not_found', `issue ${params.issueId} not found`);
      const { issue, repository } = found;
      if (!mayControl(params.actor, issue)) throw new DomainError('forbidden', 'only an admin or the issue owner may start a follow-up');
      if (issue.status !== 'pending_merge') {
        throw new DomainError('illegal_transition', `issue is ${issue.status}: follow-ups run only while its pull request is open`, {
          details: { status: issue.status },
        });
      }
      const last = await latestPullRequestTask(tx, issue.id);
      if (!last?.resultBranch || last.prNumber === null) {
        throw new DomainError('illegal_transition', 'the issue has no pull request opened by Gaffer');
      }
      if (params.prNumber !== undefined && params.prNumber !== last.prNumber) {
        throw new DomainError('illegal_transition', `this pull request is not the issue's current one (#${last.prNumber})`);
      }
      if (!(await credentialAvailable({ ...deps.credentials, db: tx }, repository))) {
        throw new DomainError('not_configured', `no credential for ${repository.fullName}: install the GitHub App on it or add a PAT`);
      }
      const options = params.options ?? {};
      return insertTask(tx, {
        issueId: issue.id,
        kind: 'follow_up',
        command: params.command,
        attempt: await nextAttemptNumber(tx, issue.id),
        requiredLabels: params.labels ?? [],
        trigger: params.trigger,
        autoRetry: params.autoRetry ?? null,
        draftPr: last.draftPr,
        setup: sandbox.setup,
        network: sandbox.network,
        sandboxRequired: sandbox.sandboxRequired,
        agent: options.agent ?? last.agent,
        model: options.model ?? last.model,
        baseBranch: last.baseBranch,
        headBranch: last.resultBranch,
        prNumber: last.prNumber,
        prUrl: last.prUrl,
        nextDispatchAt: deps.now(),
        requestedBy: params.actor.kind === 'user' ? params.actor.id : null,
        requestedByLogin: params.actor.kind === 'github' ? params.actor.login : params.actor.kind === 'user' ? params.actor.email : null,
      });
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw new DomainError('conflict', 'issue already has an active task', { cause: err });
    throw err;
  }
  emit(deps, 'queued', task);
  return task;
}

/** How ending a task went. */
export type EndResult =
  | { kind: 'ended'; task: TaskRow; requeued: TaskRow | undefined }
  | { kind: 'not_active'; task: TaskRow | undefined }
  /** A success report holds the task while it opens the pull request; try again after. */
  | { kind: 'claimed'; task: TaskRow };

/**
 * How long a success report holds its task while GitHub opens the pull request. A lease, so a
 * server that dies mid-report frees the task for the sweeper after this long.
 */
export const REPORT_CLAIM_MS = 2 * 60_000;

const isActive = (status: TaskRow['status']) => status === 'pending' || status === 'running';
const claimHeld = (task: TaskRow, now: Date) => task.reportClaimedUntil !== null && task.reportClaimedUntil > now;

/**
 * Fails an active task, moving the issue to `terminated`, or, for infrastructure failures
 * while the retry budget lasts, queueing a new attempt with the issue left `processing`.
 */
export async function failTask(
  deps: Pick<TaskDeps, 'db' | 'now' | 'settings' | 'onEvent' | 'logger' | 'taskTokens'>,
  params: {
    taskId: string;
    kind: FailureKind;
    message: string;
    nodeId?: string;
    /** The report holding the claim fails its own task. */
    overrideClaim?: boolean;
    /** Decided from the kind when absent (see {@link failureOutcome}). */
    outcome?: TaskOutcome;
    usage?: AgentUsage | undefined;
    networkRefused?: NetworkRefused | undefined;
  },
): Promise<EndResult> {
  const result = await deps.db.transaction(async (tx): Promise<EndResult> => {
    const task = await getTask(tx, params.taskId, { forUpdate: true });
    if (!task || (task.status !== 'pending' && task.status !== 'running')) return { kind: 'not_active', task };
    if (params.nodeId !== undefined && task.nodeId !== params.nodeId) return { kind: 'not_active', task };
    if (!params.overrideClaim && claimHeld(task, deps.now())) return { kind: 'claimed', task };
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
        reportClaimedUntil: null,
      },
    });
    if (!failed) return { kind: 'not_active', task };
    const infra = (INFRA_FAILURES as readonly string[]).includes(params.kind);
    const budget = task.autoRetry ?? deps.settings.autoRetryInfraFailures;
    if (infra && budget > 0) {
      const streak = await recentInfraFailures(tx, task.issueId, INFRA_FAILURES);
      if (streak <= budget) {
        const requeued = await insertTask(tx, {
          issueId: task.issueId,
          kind: task.kind,
          agent: task.agent,
          model: task.model,
          baseBranch: task.baseBranch,
          headBranch: task.headBranch,
          prNumber: task.kind === 'follow_up' ? task.prNumber : null,
          prUrl: task.kind === 'follow_up' ? task.prUrl : null,
          command: task.command,
          attempt: await nextAttemptNumber(tx, task.issueId),
          requiredLabels: task.requiredLabels,
          trigger: 'retry',
          autoRetry: task.autoRetry,
          draftPr: task.draftPr,
          setup: task.setup,
          network: task.network,
          sandboxRequired: task.sandboxRequired,
          repoMaxPerDay: task.repoMaxPerDay,
          repoMaxConcurrent: task.repoMaxConcurrent,
          nextDispatchAt: deps.now(),
          requestedBy: task.requestedBy,
          requestedByLogin: task.requestedByLogin,
        });
        return { kind: 'ended', task: failed, requeued };
      }
    }
    // A follow-up's failure leaves the pull request, and so the issue (`pending_merge`), as it was.
    if (task.kind !== 'follow_up') await moveIssue(tx, task.issueId, 'fail');
    return { kind: 'ended', task: failed, requeued: undefined };
  });
  if (result.kind === 'ended') {
    // However it failed (a report, a cancel, a timeout, a lost node, a delivery given up), the
    // token minted for it has nothing more to do.
    await deps.taskTokens.revokeForTask(params.taskId);
    deps.logger.info({ taskId: params.taskId, kind: params.kind, reason: params.message }, 'task failed');
    emit(deps, params.kind === 'cancelled' ? 'cancelled' : 'failed', result.task);
    if (result.requeued) emit(deps, 'requeued', result.requeued);
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
  if (result.kind === 'claimed') {
    throw new DomainError('illegal_transition', 'the task has finished and its pull request is being opened: it can no longer be cancelled');
  }
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
  const claim = await deps.db.transaction(async (tx) => {
    const current = await getTask(tx, task.id, { forUpdate: true });
    if (!current || current.nodeId !== params.nodeId || !isActive(current.status)) return 'ended' as const;
    if (claimHeld(current, claimedAt)) return 'busy' as const;
    await setReportClaim(tx, task.id, new Date(claimedAt.getTime() + REPORT_CLAIM_MS));
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
        task,
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

/** The queue view the task lifecycle's settings give. */
export function queueViewOf(deps: Pick<TaskDeps, 'settings' | 'now'>): QueueView {
  return { caps: deps.settings.caps, heartbeatTimeoutMs: deps.settings.heartbeatTimeoutMs, now: deps.now };
}
