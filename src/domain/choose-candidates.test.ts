import { describe, expect, it } from 'vitest';
import type { TaskRow } from '../db/schema.js';
import { decideRun, runCandidates, verifyVerdict } from './choose-candidates.js';

let seq = 0;
/** A candidate task as the run reads it: ended with a pushed change, or at work. */
function cand(candidate: number, o: { status?: TaskRow['status']; verify?: 'passed' | 'failed' | null; paths?: string[]; lines?: number; attempt?: number } = {}): TaskRow {
  const status = o.status ?? 'success';
  const pushed = status === 'success';
  return {
    id: `00000000-0000-4000-8000-${String(++seq).padStart(12, '0')}`,
    kind: 'candidate',
    runId: 'run',
    candidate,
    attempt: o.attempt ?? candidate,
    status,
    resultBranch: pushed ? `b${candidate}` : null,
    verify: ['npm test'],
    verifyResults: o.verify === null || !pushed ? null : [{ command: 'npm test', status: o.verify ?? 'passed', exit_code: o.verify === 'failed' ? 1 : 0, duration_ms: 1 }],
    change: pushed ? { files: 1, additions: o.lines ?? 10, deletions: 0, paths: o.paths ?? ['src/a.ts'] } : null,
    usage: null,
    completedAt: status === 'pending' || status === 'running' ? null : new Date(1000 * candidate),
  } as unknown as TaskRow;
}

const best = { strategy: 'best' as const, select: 'verify' as const, testsOk: false, auto: false, n: 3, max: 3 };

describe('deciding a best-of-N run', () => {
  it('best: waits while any candidate is at work, then takes the only one whose verify passed', () => {
    expect(decideRun(best, runCandidates([cand(1, { verify: 'failed' }), cand(2), cand(3, { status: 'running' })])).kind).toBe('wait');
    const d = decideRun(best, runCandidates([cand(1, { verify: 'failed' }), cand(2, { lines: 500 }), cand(3, { status: 'failed' })]));
    expect(d).toMatchObject({ kind: 'win', winner: { index: 2 }, cancel: [] });
  });

  it('best: a candidate that passes by deleting a test ranks below an honest one, unless tests=ok', () => {
    const tasks = [cand(1, { paths: ['src/a.test.ts'], lines: 3 }), cand(2, { lines: 40 })];
    expect(decideRun({ ...best, n: 2 }, runCandidates(tasks))).toMatchObject({ kind: 'win', winner: { index: 2 } });
    expect(decideRun({ ...best, n: 2, testsOk: true }, runCandidates(tasks))).toMatchObject({ kind: 'win', winner: { index: 1 } });
  });

  it('first: the first to qualify wins and the rest are cancelled', () => {
    const d = decideRun({ ...best, strategy: 'first' }, runCandidates([cand(1, { status: 'running' }), cand(2), cand(3, { status: 'pending' })]));
    expect(d.kind).toBe('win');
    if (d.kind === 'win') expect(d.cancel.map((c) => c.index)).toEqual([1, 3]);
  });

  it('n: auto adds one only while none has qualified, up to max', () => {
    const auto = { ...best, auto: true, n: 1, max: 3 };
    expect(decideRun(auto, runCandidates([cand(1, { verify: 'failed' })])).kind).toBe('add');
    expect(decideRun({ ...auto, n: 2 }, runCandidates([cand(1, { verify: 'failed' }), cand(2)]))).toMatchObject({ kind: 'win', winner: { index: 2 } });
    expect(decideRun({ ...auto, n: 3 }, runCandidates([cand(1, { verify: 'failed' }), cand(2, { status: 'failed' }), cand(3, { verify: 'failed' })])).kind).toBe('no_winner');
  });

  it('no candidate qualifies: no winner; a retried candidate is judged by its latest attempt', () => {
    expect(decideRun({ ...best, n: 2 }, runCandidates([cand(1, { verify: 'failed' }), cand(2, { status: 'failed' })])).kind).toBe('no_winner');
    const retried = runCandidates([cand(1, { status: 'failed', attempt: 1 }), cand(1, { attempt: 3 }), cand(2, { verify: 'failed', attempt: 2 })]);
    expect(retried.map((c) => [c.index, c.task.attempt])).toEqual([[1, 3], [2, 2]]);
    expect(decideRun({ ...best, n: 2 }, retried)).toMatchObject({ kind: 'win', winner: { index: 1 } });
  });

  it('reads verify verdicts: none asked, not reported, failed', () => {
    expect(verifyVerdict({ verify: [], verifyResults: null })).toBe('none');
    expect(verifyVerdict({ verify: ['x'], verifyResults: null })).toBe('pending');
    expect(verifyVerdict({ verify: ['x'], verifyResults: [{ command: 'x', status: 'timed_out', exit_code: null, duration_ms: 1 }] })).toBe('failed');
  });
});
