import { describe, expect, it } from 'vitest';
import type { TaskRow } from '../db/schema.js';
import { taskPhase } from '../protocol/node-api.js';
import { checkRunView } from './check-run.js';
import { activeCell, phaseLabel } from './task-phase.js';

const task = (over: Partial<TaskRow>): TaskRow =>
  ({ id: 't1', status: 'running', phase: null, setup: [], verify: [], usage: null, networkRefused: null, prNumber: null, errorMessage: null, ...over }) as TaskRow;

describe('live phases', () => {
  it("reads each phase in a few words; a command is the task's own, shortened, in a code span on one line", () => {
    const verify = ['npm test', 'npm run lint\n`rm -rf /` <img src=x onerror=alert(1)> [x](https://evil.example) and more and more and more'];
    expect(phaseLabel(task({ phase: { phase: 'preparing' } }))).toBe('preparing (clone, checkout)');
    expect(phaseLabel(task({ phase: { phase: 'setup', command: 1, of: 1 }, setup: ['npm ci'] }))).toBe('setup 1/1 `npm ci`');
    expect(phaseLabel(task({ phase: { phase: 'agent' } }))).toBe('agent');
    expect(phaseLabel(task({ phase: { phase: 'verify', command: 1, of: 2 }, verify }))).toBe('verify 1/2 `npm test`');
    expect(phaseLabel(task({ phase: { phase: 'verify', command: 2, of: 2 }, verify }))).toBe("verify 2/2 `npm run lint 'rm -rf /' <img src=x onerror=alert(1)> [x](htt`");
    expect(phaseLabel(task({ phase: { phase: 'pushing' } }))).toBe('pushing');
    // A command the task does not have (its config changed under a stale row): the numbers only.
    expect(phaseLabel(task({ phase: { phase: 'verify', command: 2, of: 2 }, verify: ['npm test'] }))).toBe('verify 2/2');
    // Not running, or no phase said: nothing.
    expect(phaseLabel(task({ status: 'success', phase: { phase: 'agent' } }))).toBeUndefined();
    expect(phaseLabel(task({}))).toBeUndefined();
  });

  it('fills the candidates table cell of a candidate at work', () => {
    expect(activeCell(task({ status: 'pending' }))).toBe('queued');
    expect(activeCell(task({}))).toBe('running');
    expect(activeCell(task({ phase: { phase: 'agent' } }))).toBe('running: agent');
    expect(activeCell(task({ phase: { phase: 'verify', command: 1, of: 2 }, verify: ['npm test', 'x'] }))).toBe('running: verify 1/2 `npm test`');
    expect(activeCell(task({ phase: { phase: 'pushing' } }))).toBe('pushing');
  });

  it('takes only the closed set from a node', () => {
    expect(taskPhase.safeParse({ phase: 'verify', command: 2, of: 2 }).success).toBe(true);
    for (const bad of [{ phase: 'Agent' }, { phase: 'agent', text: 'x' }, { phase: 'verify', command: 3, of: 2 }, { phase: 'verify', command: 1, of: 21 }, { phase: 'pushing', command: 1, of: 1 }]) {
      expect(taskPhase.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });

  it("names a candidate in its check run and shows its run's table; a single task's run shows its real phase", () => {
    const url = 'https://gaffer.test/admin/tasks/t1';
    const single = checkRunView(task({ phase: { phase: 'agent' } }), { name: 'n1' }, url);
    expect(single).toMatchObject({ status: 'in_progress', title: 'Agent running' });
    expect(single.summary).toContain('Phase: running on node `n1`: agent.');
    expect(single.summary).not.toContain('clone, agent, commit, push');
    const candidate = { index: 2, of: 3, line: 'Best-of-N run (3 candidates): 0 of 3 candidates finished.', table: '| # | … |\n| 2 | … | running: agent |' };
    const running = checkRunView(task({ candidate: 2, phase: { phase: 'agent' } }), { name: 'n1' }, url, candidate);
    expect(running.title).toBe('Candidate 2 of 3: Agent running');
    expect(running.summary).toContain('Candidate 2 of 3. Phase: running on node `n1`: agent.');
    expect(running.summary).toContain(candidate.table);
    const ended = checkRunView(task({ candidate: 2, status: 'failed', outcome: 'cancelled', failureKind: 'cancelled', errorMessage: 'candidate 1 won' }), null, url, candidate);
    expect(ended).toMatchObject({ status: 'completed', conclusion: 'cancelled', title: 'Candidate 2 of 3: cancelled' });
    expect(ended.summary).toContain('**Candidate 2 of 3**');
    expect(ended.summary).toContain(candidate.table);
    // A table past what GitHub takes in a summary: the run's line only.
    const huge = checkRunView(task({ candidate: 2 }), null, url, { ...candidate, table: 'x'.repeat(70_000) });
    expect(huge.summary.length).toBeLessThan(65_535);
    expect(huge.summary).toContain(candidate.line);
  });
});
