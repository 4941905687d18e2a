import { describe, expect, it } from 'vitest';
import type { CandidateCheckRow, TaskRow } from '../db/schema.js';
import { checksVerdict, decideRun, runCandidates, verifyVerdict } from './choose-candidates.js';

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

  describe('judged by checks', () => {
    const checksRun = { ...best, select: 'checks' as const };
    const row = (task: TaskRow, status: CandidateCheckRow['status']) => ({ taskId: task.id, runId: 'run', branch: task.resultBranch!, sha: null, status, deadline: new Date(0), suites: [], createdAt: new Date(0), updatedAt: new Date(0) });

    it('best: a pushed candidate awaiting its checks is not judged yet; once every verdict is in, the one whose checks passed wins', () => {
      const tasks = [cand(1), cand(2, { lines: 90 }), cand(3, { status: 'failed' })];
      const waiting = runCandidates(tasks, [row(tasks[0]!, 'failed'), row(tasks[1]!, 'pending')]);
      expect(waiting.map((c) => [c.index, c.ended, c.awaitingChecks, c.checks])).toEqual([
        [1, true, false, 'failed'],
        [2, true, true, 'pending'],
        [3, true, false, 'none'],
      ]);
      expect(decideRun(checksRun, waiting)).toMatchObject({ kind: 'wait', ranked: [{ candidate: { index: 1 } }, { candidate: { index: 3 } }] });
      expect(decideRun(checksRun, runCandidates(tasks, [row(tasks[0]!, 'failed'), row(tasks[1]!, 'passed')]))).toMatchObject({ kind: 'win', winner: { index: 2 }, cancel: [] });
      expect(decideRun(checksRun, runCandidates(tasks, [row(tasks[0]!, 'failed'), row(tasks[1]!, 'timed_out')])).kind).toBe('no_winner');
    });

    it('first: a candidate awaiting checks neither wins nor is cancelled when another qualifies', () => {
      const tasks = [cand(1), cand(2, { status: 'running' }), cand(3)];
      const first = { ...checksRun, strategy: 'first' as const };
      expect(decideRun(first, runCandidates(tasks, [row(tasks[0]!, 'pending'), row(tasks[2]!, 'pending')])).kind).toBe('wait');
      const d = decideRun(first, runCandidates(tasks, [row(tasks[0]!, 'pending'), row(tasks[2]!, 'passed')]));
      expect(d).toMatchObject({ kind: 'win', winner: { index: 3 } });
      if (d.kind === 'win') expect(d.cancel.map((c) => c.index)).toEqual([2]);
    });

    it('n: auto adds the next candidate only after the first one\'s checks failed', () => {
      const auto = { ...checksRun, auto: true, n: 1, max: 3 };
      const t = cand(1);
      expect(decideRun(auto, runCandidates([t], [row(t, 'pending')])).kind).toBe('wait');
      expect(decideRun(auto, runCandidates([t], [row(t, 'failed')])).kind).toBe('add');
    });

    it('reads checks verdicts: none recorded and timed out are none', () => {
      expect([undefined, { status: 'timed_out' as const }, { status: 'pending' as const }, { status: 'passed' as const }].map(checksVerdict)).toEqual(['none', 'none', 'pending', 'passed']);
    });
  });

  it('reads verify verdicts: none asked, not reported, failed', () => {
    expect(verifyVerdict({ verify: [], verifyResults: null })).toBe('none');
    expect(verifyVerdict({ verify: ['x'], verifyResults: null })).toBe('pending');
    expect(verifyVerdict({ verify: ['x'], verifyResults: [{ command: 'x', status: 'timed_out', exit_code: null, duration_ms: 1 }] })).toBe('failed');
  });
});
