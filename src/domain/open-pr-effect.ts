import { z } from 'zod';
import { compareAndSetTask, getTask, getTaskContext, latestTaskForIssue, nextAttemptNumber } from '../db/queries/tasks.js';
import { candidateSummary } from './candidate-report.js';
import { getIssue } from '../db/queries/issues.js';
import type { EffectRow } from '../db/schema.js';
import type { DbOrTx } from '../db/types.js';
import type { DeadEffectHandler, EffectPerformer } from './effect-worker.js';
import { EFFECT_PRIORITY } from './effects.js';
import { recordEffect } from '../db/queries/effects.js';
import { DomainError } from './errors.js';
import { moveIssue } from './issues.js';
import { issueTransition } from './issue-status.js';
import type { TaskDeps } from './tasks.js';
import { emit } from './tasks.js';

/**
 * Records, in the report's own transaction, that the task's pull request is to be opened. Keyed
 * by task: a repeated report, or a crash and replay, records it once.
 */
export async function recordOpenPullRequest(tx: DbOrTx, params: { installationId: number; taskId: string; issueId: string; branch: string; now: Date }): Promise<void> {
  await recordEffect(tx, {
    kind: 'open_pr',
    installationId: params.installationId,
    taskId: params.taskId,
    issueId: params.issueId,
    idempotencyKey: `open_pr:${params.taskId}`,
    priority: EFFECT_PRIORITY.open_pr,
    payload: { branch: params.branch },
    runAfter: params.now,
    createdAt: params.now,
  });
}

/** What a `close_pr` effect carries: the pull request and the comment that says why. */
const closePayload = z.object({ number: z.number().int(), comment: z.string().min(1) });

/**
 * Records, in the caller's transaction, that a pull request is to be closed with a comment. Keyed
 * by repository and number: recorded again (a redelivery, a replay), it is closed once.
 */
export async function recordClosePullRequest(
  tx: DbOrTx,
  params: { installationId: number; taskId: string; issueId: string; repositoryId: string; number: number; comment: string; now: Date },
): Promise<void> {
  await recordEffect(tx, {
    kind: 'close_pr',
    installationId: params.installationId,
    taskId: params.taskId,
    issueId: params.issueId,
    idempotencyKey: `close_pr:${params.repositoryId}#${params.number}`,
    priority: EFFECT_PRIORITY.close_pr,
    payload: { number: params.number, comment: params.comment } satisfies z.infer<typeof closePayload>,
    runAfter: params.now,
    createdAt: params.now,
  });
}

/** Closes the pull request of a `close_pr` effect, commenting why once (see PullRequests.closePullRequest). */
export function closePullRequestPerformer(deps: TaskDeps): EffectPerformer {
  return async (effect) => {
    const parsed = closePayload.safeParse(effect.payload);
    if (!parsed.success) throw new DomainError('invalid_input', `effect ${effect.id} has a payload that is not understood`);
    const ctx = effect.taskId ? await getTaskContext(deps.db, effect.taskId) : undefined;
    if (!ctx) throw new DomainError('not_found', `the task of effect ${effect.id} is gone`);
    if (!deps.pullRequests) throw new DomainError('not_configured', 'no GitHub App: pull requests cannot be closed');
    await deps.pullRequests.closePullRequest({ repository: ctx.repository, number: parsed.data.number, comment: parsed.data.comment, retry: effect.attempts > 1 });
  };
}

/**
 * Opens the task's pull request (or finds the one already open for its branch: GitHub sees one
 * however often this runs), then records it on the task and moves the issue to `pending_merge`,
 * both once, under the task's lock.
 */
export function openPullRequestPerformer(deps: TaskDeps): EffectPerformer {
  return async (effect) => {
    const ctx = effect.taskId ? await getTaskContext(deps.db, effect.taskId) : undefined;
    if (!ctx) throw new DomainError('not_found', `the task of effect ${effect.id} is gone`);
    if (ctx.task.prNumber !== null) return;
    if (!deps.pullRequests) throw new DomainError('not_configured', 'no GitHub App: pull requests cannot be opened');
    const branch = ctx.task.resultBranch;
    if (ctx.task.status !== 'success' || !branch) throw new DomainError('stale_attempt', `task ${ctx.task.id} has no reported branch`);
    // A best-of-N winner's pull request carries every candidate's row, to compare them.
    const summary = ctx.task.runId ? await candidateSummary(deps.db, ctx.task.runId, ctx.issue.number) : undefined;
    const candidates = summary ? `${summary.line}\n\n${summary.table}` : undefined;
    const pr = await deps.pullRequests.ensurePullRequest({ repository: ctx.repository, issue: ctx.issue, task: ctx.task, branch, candidates });
    const row = await deps.db.transaction(async (tx) => {
      const current = await getTask(tx, ctx.task.id, { forUpdate: true });
      if (!current || current.prNumber !== null) return undefined;
      // A retried dead effect clears the failure its giving up recorded.
      const recovered = current.failureKind === 'pull_request_failed';
      const updated = await compareAndSetTask(tx, {
        id: current.id,
        from: 'success',
        set: { prNumber: pr.number, prUrl: pr.url, ...(recovered ? { failureKind: null, errorMessage: null } : {}) },
      });
      // Only while this is the issue's latest attempt: a restart since then owns the issue now.
      // A candidate's run is the issue's latest when its latest task is one of the run's.
      const latest =
        current.runId !== null
          ? (await latestTaskForIssue(tx, current.issueId))?.runId === current.runId
          : current.attempt === (await nextAttemptNumber(tx, current.issueId)) - 1;
      const issue = await getIssue(tx, current.issueId);
      if (updated && !latest && ctx.repository.installationId !== null) {
        // A restart owns the issue now: this attempt's pull request would compete with its own.
        await recordClosePullRequest(tx, {
          installationId: ctx.repository.installationId,
          taskId: current.id,
          issueId: current.issueId,
          repositoryId: ctx.repository.id,
          number: pr.number,
          comment: `Gaffer closed this pull request: attempt ${current.attempt} was superseded by a newer attempt on #${ctx.issue.number}.`,
          now: deps.now(),
        });
      }
      if (!updated || !issue || !latest) return updated;
      // Giving up ended the issue `terminated`; the pull request now exists after all.
      const status = recovered && issue.status === 'terminated' ? (await moveIssue(tx, issue.id, 'start')).status : issue.status;
      // The issue waits in `processing` for its pull request; only then is it pending merge.
      if (issueTransition(status, 'succeed').ok) await moveIssue(tx, issue.id, 'succeed');
      return updated;
    });
    if (!row) return;
    deps.logger.info({ taskId: row.id, pr: pr.number }, 'pull request opened');
    emit(deps, 'pr_opened', row);
  };
}

/**
 * The pull request could not be opened (GitHub refused, or stayed down through every try): the
 * issue ends `terminated`, so `/start` may try again, and the task says why. The pushed branch stays.
 */
export function openPullRequestDead(deps: TaskDeps): DeadEffectHandler {
  return async (effect: EffectRow, reason: string) => {
    if (!effect.taskId) return;
    const row = await deps.db.transaction(async (tx) => {
      const task = await getTask(tx, effect.taskId!, { forUpdate: true });
      if (!task || task.prNumber !== null) return undefined;
      const updated = await compareAndSetTask(tx, {
        id: task.id,
        from: 'success',
        set: { failureKind: 'pull_request_failed', errorMessage: `could not open the pull request: ${reason}` },
      });
      const issue = await getIssue(tx, task.issueId);
      if (issue && issueTransition(issue.status, 'fail').ok) await moveIssue(tx, issue.id, 'fail');
      return updated;
    });
    if (row) emit(deps, 'failed', row);
  };
}
