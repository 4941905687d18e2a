import { getPullRequestCi, lockPullRequestCi, updatePullRequestCi } from '../db/queries/pull-request-ci.js';
import type { PullRequestCiRow } from '../db/schema.js';
import type { Db } from '../db/types.js';

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

/** Applies a CI event to the pull request's loop under its row lock, and returns what to do. */
export async function recordCiEvent(db: Db, params: { issueId: string; prNumber: number; event: CiEvent; maxAttempts: number }): Promise<CiAction> {
  return db.transaction(async (tx) => {
    const state = await lockPullRequestCi(tx, params.issueId, params.prNumber);
    const { action, next } = ciStep(state, params.event, params.maxAttempts);
    if (action.kind !== 'ignore') await updatePullRequestCi(tx, params.issueId, next);
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
