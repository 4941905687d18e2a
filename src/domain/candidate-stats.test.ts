import { describe, expect, it } from 'vitest';
import type { CandidateStatsInput } from '../db/queries/candidate-stats.js';
import type { TaskRow } from '../db/schema.js';
import { candidateStats } from './candidate-stats.js';

let seq = 0;
const id = () => `00000000-0000-4000-8000-${String(++seq).padStart(12, '0')}`;
/** A candidate of run `runId`: pushed with verify passed or failed, pushed nothing, or at work. */
function cand(runId: string, candidate: number, agent: string | null, how: 'passed' | 'failed' | 'nothing' | 'running', attempt = candidate): TaskRow {
  const pushed = how === 'passed' || how === 'failed';
  return {
    id: id(),
    kind: 'candidate',
    runId,
    candidate,
    attempt,
    agent,
    status: how === 'running' ? 'running' : pushed ? 'success' : 'failed',
    resultBranch: pushed ? `b${candidate}` : null,
    verify: ['npm test'],
    verifyResults: pushed ? [{ command: 'npm test', status: how, exit_code: how === 'passed' ? 0 : 1, duration_ms: 1 }] : null,
    change: pushed ? { files: 1, additions: 1, deletions: 0, paths: ['src/a.ts'] } : null,
    usage: null,
    completedAt: how === 'running' ? null : new Date(1000 * candidate),
  } as unknown as TaskRow;
}
function run(repository: string, tasks: TaskRow[], o: { winner?: TaskRow; picked?: TaskRow; merged?: boolean; issue?: string; at?: number } = {}): CandidateStatsInput[] {
  return tasks.map((task) => ({
    task: { ...task, issueId: o.issue ?? `issue-of-${task.runId}` },
    repository,
    runStatus: o.winner ? ('chosen' as const) : ('running' as const),
    runCreatedAt: new Date(o.at ?? 0),
    select: 'verify' as const,
    winnerTaskId: o.winner?.id ?? null,
    pickedTaskId: o.picked?.id ?? null,
    issueStatus: o.merged ? ('merged' as const) : ('pending_merge' as const),
  }));
}

describe('candidate statistics per repository and agent', () => {
  it('counts run, qualified, won and merged; a pick moves the merge to the picked candidate', () => {
    const a = [cand('r1', 1, 'claude', 'failed'), cand('r1', 2, 'codex', 'passed'), cand('r1', 3, 'claude', 'passed')];
    const b = [cand('r2', 1, 'codex', 'passed'), cand('r2', 2, 'claude', 'passed')];
    const c = [cand('r3', 1, null, 'nothing'), cand('r3', 2, null, 'running')];
    const rows = candidateStats([
      ...run('o/app', a, { winner: a[1], merged: true }),
      ...run('o/app', b, { winner: b[0], picked: b[1], merged: true }),
      ...run('o/lib', c),
    ]);
    expect(rows).toEqual([
      { repository: 'o/app', agent: 'claude', run: 3, qualified: 2, won: 0, merged: 1 },
      { repository: 'o/app', agent: 'codex', run: 2, qualified: 2, won: 2, merged: 1 },
      { repository: 'o/lib', agent: 'any', run: 2, qualified: 0, won: 0, merged: 0 },
    ]);
  });

  it('counts a retried candidate once, as its latest attempt', () => {
    const first = cand('r4', 1, 'codex', 'nothing', 1);
    const retry = cand('r4', 1, 'codex', 'passed', 3);
    expect(candidateStats(run('o/app', [first, retry], { winner: retry }))).toEqual([{ repository: 'o/app', agent: 'codex', run: 1, qualified: 1, won: 1, merged: 0 }]);
  });

  it("counts merged only for the issue's latest chosen run: an earlier run's pull request was closed unmerged", () => {
    const first = [cand('r5', 1, 'claude', 'passed'), cand('r5', 2, 'codex', 'failed')];
    const second = [cand('r6', 1, 'claude', 'failed'), cand('r6', 2, 'codex', 'passed')];
    const rows = candidateStats([
      ...run('o/app', first, { winner: first[0], merged: true, issue: 'i1', at: 1 }),
      ...run('o/app', second, { winner: second[1], merged: true, issue: 'i1', at: 2 }),
    ]);
    expect(rows).toEqual([
      { repository: 'o/app', agent: 'claude', run: 2, qualified: 1, won: 1, merged: 0 },
      { repository: 'o/app', agent: 'codex', run: 2, qualified: 1, won: 1, merged: 1 },
    ]);
  });

  it('in a run judged by checks, a candidate qualifies once its checks passed; one still waiting does not count yet', () => {
    const tasks = [cand('r7', 1, 'codex', 'failed'), cand('r7', 2, 'claude', 'passed'), cand('r7', 3, 'claude', 'passed')];
    const check = (t: TaskRow, status: 'pending' | 'passed' | 'failed') => ({ taskId: t.id, runId: 'r7', branch: 'b', sha: null, status, deadline: new Date(0), suites: [], createdAt: new Date(0), updatedAt: new Date(0) });
    const inputs = run('o/app', tasks).map((i, n) => ({ ...i, select: 'checks' as const, check: check(i.task, (['passed', 'failed', 'pending'] as const)[n]!) }));
    expect(candidateStats(inputs)).toEqual([
      { repository: 'o/app', agent: 'claude', run: 2, qualified: 0, won: 0, merged: 0 },
      { repository: 'o/app', agent: 'codex', run: 1, qualified: 1, won: 0, merged: 0 },
    ]);
  });

  it('is empty with no candidates', () => {
    expect(candidateStats([])).toEqual([]);
  });
});
