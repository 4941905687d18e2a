import { describe, expect, it } from 'vitest';
import { reportBranchRequest } from '../protocol/node-api.js';
import { type SuiteInput, suitesVerdict } from './candidate-checks.js';

const GAFFER = 1;
const s = (status: string, conclusion: string | null, o: Partial<SuiteInput> = {}): SuiteInput => ({ appId: 15368, appSlug: 'github-actions', name: 'GitHub Actions', status, conclusion, runs: 1, ...o });
const otherCi = { appId: 777, appSlug: 'other-ci', name: 'Other CI' };

describe("a candidate commit's check suites", () => {
  it.each([
    ['every suite success, neutral or skipped', [s('completed', 'success'), s('completed', 'neutral'), s('completed', 'skipped')], 'passed'],
    ['one failed while another still runs: failed at once', [s('completed', 'failure'), s('in_progress', null)], 'failed'],
    ['timed out, cancelled, action required, stale all fail', [s('completed', 'success'), s('completed', 'action_required')], 'failed'],
    ['one still running', [s('completed', 'success'), s('queued', null)], 'pending'],
    ['no suite yet', [], 'pending'],
    ["Gaffer's own suite is not the repository's check", [s('completed', 'success'), s('queued', null, { appId: GAFFER }), s('completed', 'failure', { appId: GAFFER })], 'passed'],
    ['a queued suite with no check runs (an app that runs none here) is not counted', [s('completed', 'success'), s('queued', null, { ...otherCi, runs: 0 })], 'passed'],
    ['only such suites: nothing to judge yet', [s('queued', null, { ...otherCi, runs: 0 })], 'pending'],
    ["a GitHub Actions workflow whose jobs have not started yet counts: it is waited for", [s('completed', 'success'), s('queued', null, { runs: 0 })], 'pending'],
  ] as const)('%s', (_what, suites, verdict) => {
    expect(suitesVerdict(suites, GAFFER).verdict).toBe(verdict);
  });

  it('records the suites it counted, for the table', () => {
    expect(suitesVerdict([s('completed', 'timed_out', { name: 'e2e' }), s('in_progress', null, { name: 'lint' })], GAFFER).counted).toEqual([
      { name: 'e2e', conclusion: 'timed_out' },
      { name: 'lint', conclusion: null },
    ]);
  });

  it("reads the node's reported commit only as 40 hex digits; anything else reads as absent", () => {
    const base = { task_id: '00000000-0000-4000-8000-000000000001', status: 'success', branch_name: 'b' };
    expect(reportBranchRequest.parse({ ...base, head_sha: 'a'.repeat(40) }).head_sha).toBe('a'.repeat(40));
    for (const bad of ['A'.repeat(40), 'a'.repeat(39), '$(reboot)', 42]) expect(reportBranchRequest.parse({ ...base, head_sha: bad }).head_sha).toBeUndefined();
  });
});
