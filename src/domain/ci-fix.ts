import { recordEffect } from '../db/queries/effects.js';
import { getPullRequestCi, lockPullRequestCi, updatePullRequestCi } from '../db/queries/pull-request-ci.js';
import type { PullRequestCiRow } from '../db/schema.js';
import type { Db } from '../db/types.js';
import { EFFECT_PRIORITY } from './effects.js';

/** Why a pull request's CI fix loop stopped for good. */
export type CiStopReason = 'exhausted' | 'human_push';

/** What happened to a Gaffer pull request's checks or branch. */
export type CiEvent = { kind: 'failed'; headSha: string } | { kind: 'passed'; headSha: string } | { kind: 'human_push' };

/** What the loop does about it. */
export type CiAction =
  | { kind: 'ignore'; why: string }
  /** Re-run the failed jobs once, to rule out a flake. */
  | { kind: 'rerun' }
  /** Start follow-up attempt `attempt` with the failures. */
  | { kind: 'fix'; attempt: number }
  /** The attempts ran out: say so on the pull request, with the last failure. */
  | { kind: 'exhausted'; attempts: number }
  /** The checks pass again after a fix: the loop is done. */
  | { kind: 'passed' }
  | { kind: 'stopped'; reason: CiStopReason };

type State = Pick<PullRequestCiRow, 'rerunSha' | 'fixSha' | 'attempts' | 'stoppedReason'>;

/**
 * The CI fix loop, as one pure step: a failed head commit is re-run once; failing again, it gets
 * a fix attempt while the cap allows, else the loop stops as `exhausted`. A human push stops it
 * for good; a pass ends the current failure (a later failure of a new commit may start again,
 * within the same cap). Each head commit gets at most one re-run and one fix.
 */
export function ciStep(state: State, event: CiEvent, maxAttempts: number): { action: CiAction; next: State } {
  if (state.stoppedReason === 'human_push' || state.stoppedReason === 'exhausted') {
    return { action: { kind: 'ignore', why: `the loop stopped (${state.stoppedReason})` }, next: state };
  }
  if (event.kind === 'human_push') return { action: { kind: 'stopped', reason: 'human_push' }, next: { ...state, stoppedReason: 'human_push' } };
  if (event.kind === 'passed') {
    if (state.attempts === 0 && state.rerunSha !== event.headSha) return { action: { kind: 'ignore', why: 'nothing to fix' }, next: state };
    return { action: { kind: 'passed' }, next: { ...state, stoppedReason: 'passed' } };
  }
  if (state.fixSha === event.headSha) return { action: { kind: 'ignore', why: 'a fix for this commit was already started' }, next: state };
  if (state.rerunSha !== event.headSha) {
    return { action: { kind: 'rerun' }, next: { ...state, rerunSha: event.headSha, stoppedReason: null } };
  }
  if (state.attempts >= maxAttempts) {
    return { action: { kind: 'exhausted', attempts: state.attempts }, next: { ...state, stoppedReason: 'exhausted' } };
  }
  const attempt = state.attempts + 1;
  return { action: { kind: 'fix', attempt }, next: { ...state, attempts: attempt, fixSha: event.headSha, stoppedReason: null } };
}

/**
 * What a `ci_rerun` effect carries: the failed checks to run again (a GitHub Actions run's failed
 * jobs, or another CI app's suite), the pull request and commit, and the loop's settings then, so a
 * refused re-run can go on to a fix without the webhook that asked for it.
 */
export type CiRerunPayload = {
  repository: string;
  prNumber: number;
  headSha: string;
  target: { kind: 'workflow_run'; runId: number } | { kind: 'check_suite'; suiteId: number };
  /** The repository's `.github/gaffer.yml` as it was read for the event. */
  config: Record<string, unknown>;
};

/**
 * Applies a CI event to the pull request's loop under its row lock, and returns what to do. A
 * re-run is recorded as an outbox effect in the same transaction, once per head commit (the loop
 * re-runs each commit once), so a redelivered failure, or a crash, requests no second re-run.
 */
export async function recordCiEvent(
  db: Db,
  params: { issueId: string; prNumber: number; event: CiEvent; maxAttempts: number; rerun?: { installationId: number; payload: CiRerunPayload; now: Date } | undefined },
): Promise<CiAction> {
  return db.transaction(async (tx) => {
    const state = await lockPullRequestCi(tx, params.issueId, params.prNumber);
    const { action, next } = ciStep(state, params.event, params.maxAttempts);
    if (action.kind !== 'ignore') await updatePullRequestCi(tx, params.issueId, next);
    if (action.kind === 'rerun' && params.rerun && params.event.kind === 'failed') {
      await recordEffect(tx, {
        kind: 'ci_rerun',
        installationId: params.rerun.installationId,
        issueId: params.issueId,
        idempotencyKey: `ci_rerun:${params.issueId}:${params.event.headSha}`,
        priority: EFFECT_PRIORITY.ci_rerun,
        payload: params.rerun.payload,
        runAfter: params.rerun.now,
        createdAt: params.rerun.now,
      });
    }
    return action;
  });
}

/** Gives back a fix attempt that could not start (another task holds the issue). */
export async function releaseCiAttempt(db: Db, issueId: string): Promise<void> {
  await db.transaction(async (tx) => {
    const state = await getPullRequestCi(tx, issueId);
    if (!state || state.attempts === 0) return;
    await updatePullRequestCi(tx, issueId, { attempts: state.attempts - 1, fixSha: null });
  });
}
