import { describe, expect, it } from 'vitest';
import type { CandidateRunRow, TaskRow } from '../db/schema.js';
import { candidateBranch } from '../protocol/task-branch.js';
import { judgePick } from './candidate-pick.js';
import { losingBranches } from './candidate-sweep.js';
import { runCandidates } from './choose-candidates.js';

const RUN_ID = '1a2b3c4d-0000-4000-8000-000000000000';
const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
/** Candidate `n` of the run: pushed its branch (success), or not. */
function cand(n: number, pushed = true): TaskRow {
  return {
    id: id(n),
    kind: 'candidate',
    runId: RUN_ID,
    candidate: n,
    attempt: n,
    status: pushed ? 'success' : 'failed',
    resultBranch: pushed ? candidateBranch(42, RUN_ID, n) : null,
    verify: [],
    verifyResults: null,
    change: null,
    usage: null,
    completedAt: new Date(1000 * n),
  } as unknown as TaskRow;
}
const run = (o: Partial<CandidateRunRow> = {}) => ({ id: RUN_ID, status: 'chosen', winnerTaskId: id(2), pickedTaskId: null, ...o }) as CandidateRunRow;

describe('judging /pick', () => {
  const candidates = runCandidates([cand(1, false), cand(2), cand(3)]);
  const ctx = { run: run(), candidates, active: false };

  it('takes a pushed candidate by number (also written #3 or c3)', () => {
    for (const text of ['3', ' #3 ', 'c3', 'C3']) expect(judgePick(ctx, text)).toMatchObject({ ok: true, candidate: { index: 3 } });
  });

  it('refuses, saying why: not a number, out of range, nothing pushed, already chosen, a follow-up at work', () => {
    expect(judgePick(ctx, '')).toEqual({ ok: false, reason: "`/pick` takes a candidate's number, from 1 to 3" });
    expect(judgePick(ctx, '3 please')).toMatchObject({ ok: false });
    expect(judgePick(ctx, '0')).toEqual({ ok: false, reason: 'there is no candidate 0: this run has candidates 1 to 3' });
    expect(judgePick(ctx, '4')).toEqual({ ok: false, reason: 'there is no candidate 4: this run has candidates 1 to 3' });
    expect(judgePick(ctx, '1')).toEqual({ ok: false, reason: 'candidate 1 pushed no branch, so there is nothing to move the pull request to' });
    expect(judgePick(ctx, '2')).toEqual({ ok: false, reason: 'the pull request already carries candidate 2' });
    expect(judgePick({ ...ctx, run: run({ pickedTaskId: id(3) }) }, '3')).toEqual({ ok: false, reason: 'the pull request already carries candidate 3' });
    expect(judgePick({ ...ctx, active: true }, '3')).toMatchObject({ ok: false, reason: expect.stringContaining('a follow-up is at work') });
  });

  it('after a pick, the ranked winner may be picked again', () => {
    expect(judgePick({ ...ctx, run: run({ pickedTaskId: id(3) }) }, '2')).toMatchObject({ ok: true, candidate: { index: 2 } });
  });
});

describe('losing branches', () => {
  const b = (n: number) => candidateBranch(42, RUN_ID, n);

  it("are every candidate's branch but the pull request's, pushed or not (a stopped candidate may have pushed)", () => {
    expect(losingBranches(run(), [cand(1, false), cand(2), cand(3)], 42)).toEqual([b(1), b(3)]);
  });

  it('are all of them when no candidate won or the run was stopped', () => {
    expect(losingBranches(run({ status: 'no_winner', winnerTaskId: null }), [cand(1), cand(2, false)], 42)).toEqual([b(1), b(2)]);
    expect(losingBranches(run({ status: 'cancelled', winnerTaskId: null }), [cand(1)], 42)).toEqual([b(1)]);
  });

  it('are none when a chosen run does not know its pull request branch: that one must never go', () => {
    expect(losingBranches(run({ winnerTaskId: id(9) }), [cand(1), cand(2)], 42)).toEqual([]);
  });
});
