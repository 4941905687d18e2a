import { getIssueWithRepository } from '../db/queries/issues.js';
import { pickedCandidateOf } from '../db/queries/candidate-runs.js';
import { insertTask, latestPullRequestTask, nextAttemptNumber } from '../db/queries/tasks.js';
import type { IssueRow, TaskRow } from '../db/schema.js';
import type { Db, DbOrTx } from '../db/types.js';
import type { TaskCaps } from '../db/queries/caps.js';
import { isUniqueViolation } from '../db/unique-violation.js';
import type { Logger } from '../logger.js';
import { type CredentialDeps, credentialAvailable } from './credentials.js';
import { type BestOfRun, isMultiCandidate } from './best-of.js';
import { type CandidateSpec, initialCandidates, insertCandidateRunTasks } from './candidate-start.js';
import { DomainError } from './errors.js';
import { startRefusal } from './issue-status.js';
import { moveIssue } from './issues.js';
import { type QueueView } from './queue-info.js';
import { type RepoTaskCaps, sandboxSettingsFor, type TaskSandboxSettings } from './repo-config.js';
import type { NodeTransport, PullRequests, TaskEvent, TaskEventListener } from './ports.js';
import type { TaskTokens } from './task-tokens.js';
import type { Actor } from './users.js';

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
  /** Tells the effect worker an effect was recorded (after the recording transaction commits). */
  wakeEffects?: () => void;
};

/** Who asks for a start: a signed-in user, a GitHub user already checked by the App, or Gaffer. */
export type StartActor = Actor | { kind: 'github'; login: string } | { kind: 'system' };

/** The command a bare start uses, as the seed's example has it. */
export function defaultCommand(issue: Pick<IssueRow, 'number'>): string {
  return `process issue #${issue.number}`;
}

/** Whether an actor may start or stop this issue: admins any, other users the issues they own. */
export function mayControl(actor: StartActor, issue: IssueRow): boolean {
  if (actor.kind !== 'user') return true;
  return actor.isAdmin || issue.ownerId === actor.id;
}

/** Tells the listener about a task event; a listener that throws is logged, never fatal. */
export function emit(deps: Pick<TaskDeps, 'onEvent' | 'logger'>, type: TaskEvent['type'], task: Pick<TaskRow, 'id' | 'issueId'>) {
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
 * make one task. A best-of-N start (`n` > 1, `auto`) makes its run and one task of kind
 * `candidate` per candidate instead, and returns candidate 1.
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
    /** The repository's `verify:` commands, run by the node after the agent. */
    verify?: string[] | undefined;
    /** A best-of-N run's first candidates, each with its agent and labels; absent: `n` alike, on `labels`. */
    candidates?: CandidateSpec[] | undefined;
    /** Records the outbox effects the start causes (the 👀 on the comment that asked), in its transaction. */
    recordEffects?: ((tx: DbOrTx) => Promise<void>) | undefined;
  },
): Promise<TaskRow> {
  const options = params.options ?? {};
  const multi = options.bestOf !== undefined && isMultiCandidate(options.bestOf) ? options.bestOf : undefined;
  let created: TaskRow[];
  try {
    created = await deps.db.transaction(async (tx) => {
      const found = await getIssueWithRepository(tx, params.issueId, { forUpdate: true });
      if (!found) throw new DomainError('not_found', `issue ${params.issueId} not found`);
      const { issue, repository } = found;
      if (!mayControl(params.actor, issue)) {
        throw new DomainError('forbidden', 'only an admin or the issue owner may start this issue');
      }
      const refusal = startRefusal(issue.status);
      if (refusal) throw refusal;
      if (!(await credentialAvailable({ ...deps.credentials, db: tx }, repository))) {
        throw new DomainError(
          'not_configured',
          `no credential for ${repository.fullName}: install the GitHub App on it or add a PAT`,
        );
      }
      const sandbox = params.sandbox ?? { ...sandboxSettingsFor(), sandboxRequired: repository.sandbox === 'required' };
      await moveIssue(tx, issue.id, 'start');
      const command = params.command?.trim() || defaultCommand(issue);
      const base = {
        issueId: issue.id,
        command,
        trigger: params.trigger,
        autoRetry: params.autoRetry ?? null,
        draftPr: params.draftPr ?? false,
        setup: sandbox.setup,
        network: sandbox.network,
        sandboxRequired: sandbox.sandboxRequired,
        repoMaxPerDay: params.repoCaps?.perDay ?? null,
        repoMaxConcurrent: params.repoCaps?.concurrent ?? null,
        model: options.model ?? null,
        baseBranch: options.baseBranch ?? null,
        verify: params.verify ?? [],
        bestOf: options.bestOf ?? null,
        nextDispatchAt: deps.now(),
        requestedBy: params.actor.kind === 'user' ? params.actor.id : null,
        requestedByLogin: params.actor.kind === 'github' ? params.actor.login : params.actor.kind === 'user' ? params.actor.email : null,
      };
      const labels = params.labels ?? [];
      let rows: TaskRow[];
      if (!multi) rows = [await insertTask(tx, { ...base, agent: options.agent ?? null, requiredLabels: labels, attempt: await nextAttemptNumber(tx, issue.id) })];
      else {
        // A best-of-N run: one task per candidate, each on its own branch; the run decides the pull request.
        const plain = { agent: options.agent ?? null, labels };
        const candidates = params.candidates ?? initialCandidates(multi, plain, () => labels);
        rows = (await insertCandidateRunTasks(tx, { base, run: multi, candidates, now: deps.now() })).tasks;
      }
      await params.recordEffects?.(tx);
      return rows;
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw new DomainError('conflict', 'issue already has an active task', { cause: err });
    throw err;
  }
  for (const t of created) emit(deps, 'queued', t);
  return created[0]!;
}

/** What a run asked for beyond the repository's defaults: the agent CLI, its model, the base branch, its candidates. */
export type TaskRunOptions = { agent?: string | undefined; model?: string | undefined; baseBranch?: string | undefined; bestOf?: BestOfRun | undefined };

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
    /** The repository's `verify:` commands, run by the node after the agent. */
    verify?: string[] | undefined;
    /** Records the outbox effects the follow-up causes, in its transaction. */
    recordEffects?: ((tx: DbOrTx) => Promise<void>) | undefined;
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
      // After a `/pick`, the branch carries the picked candidate's work: its agent and model go on with it.
      const from = (await pickedCandidateOf(tx, last)) ?? last;
      const row = await insertTask(tx, {
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
        agent: options.agent ?? from.agent,
        model: options.model ?? from.model,
        baseBranch: last.baseBranch,
        headBranch: last.resultBranch,
        verify: params.verify ?? [],
        prNumber: last.prNumber,
        prUrl: last.prUrl,
        nextDispatchAt: deps.now(),
        requestedBy: params.actor.kind === 'user' ? params.actor.id : null,
        requestedByLogin: params.actor.kind === 'github' ? params.actor.login : params.actor.kind === 'user' ? params.actor.email : null,
      });
      await params.recordEffects?.(tx);
      return row;
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw new DomainError('conflict', 'issue already has an active task', { cause: err });
    throw err;
  }
  emit(deps, 'queued', task);
  return task;
}

/** The queue view the task lifecycle's settings give. */
export function queueViewOf(deps: Pick<TaskDeps, 'settings' | 'now'>): QueueView {
  return { caps: deps.settings.caps, heartbeatTimeoutMs: deps.settings.heartbeatTimeoutMs, now: deps.now };
}
