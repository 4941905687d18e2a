import { describe, expect, it } from 'vitest';
import type { TaskRow } from '../db/schema.js';
import { checkRunView } from './check-run.js';
import { estimateStartSeconds, formatEta } from './queue-info.js';
import { renderStatusComment, STATUS_MARKER } from './status-comment.js';

const task = (over: Partial<TaskRow>): TaskRow =>
  ({
    id: 't1',
    status: 'failed',
    attempt: 2,
    prNumber: null,
    resultBranch: null,
    nodeId: null,
    errorMessage: null,
    failureKind: null,
    ...over,
  }) as TaskRow;

const render = (t: TaskRow, status: 'processing' | 'terminated' = 'terminated') =>
  renderStatusComment({ issue: { status }, task: t, node: null, queuePosition: null, taskUrl: 'https://gaffer.test/admin/tasks/t1' });

describe('status comment', () => {
  it('keeps node addresses of infrastructure failures off the (maybe public) issue', () => {
    const body = render(task({ failureKind: 'dispatch_failed', errorMessage: 'node gpu-7 unreachable: ECONNREFUSED 10.0.3.7:8007' }));
    expect(body).toContain(STATUS_MARKER);
    expect(body).toContain('Failed: no node accepted the task');
    expect(body).not.toContain('10.0.3.7');
    expect(body).toContain('[task](https://gaffer.test/admin/tasks/t1)');
    const queued = render(task({ status: 'pending', errorMessage: 'node gpu-7 refused (503): ECONNRESET 10.0.3.7' }), 'processing');
    expect(queued).toContain('will be tried again');
    expect(queued).not.toContain('10.0.3.7');
  });

  it('says a cancel is a cancel, with the node\'s reason when it stopped, inert', () => {
    expect(render(task({ failureKind: 'cancelled', errorMessage: 'cancelled' }))).toContain('🛑 Cancelled. Comment');
    expect(render(task({ failureKind: 'cancelled', errorMessage: 'node stopped' }))).toContain('🛑 Cancelled: `node stopped`. Comment');
    // In a code span, where a link does nothing, and with no mention.
    expect(render(task({ failureKind: 'cancelled', errorMessage: 'see @octocat [x](https://evil.example)' }))).toContain(
      '🛑 Cancelled: `see @\u200boctocat [x](https://evil.example)`.',
    );
  });

  it("shows the agent's reason short, with no @mention that would notify anyone", () => {
    const body = render(task({ failureKind: 'agent_failed', errorMessage: `agent exited 3: ask @octocat ${'x'.repeat(500)}` }));
    expect(body).toContain('Failed: `agent exited 3: ask @\u200boctocat');
    expect(body).not.toMatch(/@octocat/);
    expect(body).toContain('x…');
    expect(body.length).toBeLessThan(600);
  });

  it('shows a node\'s or GitHub\'s error text in a code span, so its links and images do nothing', () => {
    const hostile = [
      'failed ![pixel](https://evil.example/track.png) see [fix](https://evil.example/phish)',
      'broke out `](https://evil.example) <img src=x onerror=alert(1)>',
      'line one\n\n# Heading\n<details>![x](https://evil.example/y.png)',
      '``` fenced ```',
    ];
    for (const errorMessage of hostile) {
      const body = render(task({ failureKind: 'agent_failed', errorMessage }));
      const line = body.split('\n')[1]!;
      // One line, and the reason is a single code span: nothing after "Failed: " is outside backticks but the fixed text.
      const match = line.match(/^\*\*Gaffer\*\* — ❌ Failed: `([^`]*)` Comment `\/start` to try again\.$/);
      expect(match, line).not.toBeNull();
      expect(body.split('\n')).toHaveLength(4);
    }
    const pr = render(task({ failureKind: 'pull_request_failed', errorMessage: 'could not open the pull request: Validation Failed [x](https://evil.example)' }));
    expect(pr).toContain('Failed: `could not open the pull request: Validation Failed [x](https://evil.example)`');
  });

  it('says the outcome, usage and duration of a finished task', () => {
    const body = render(
      task({
        failureKind: 'agent_failed',
        outcome: 'budget_exceeded',
        errorMessage: 'budget exceeded: cost $3.50 passed the cap of $1.00',
        usage: { input_tokens: 12_345, output_tokens: 450, cost_usd: 3.5, turns: 4 },
        startedAt: new Date('2026-01-01T10:00:00Z'),
        completedAt: new Date('2026-01-01T10:12:03Z'),
      }),
    );
    expect(body).toContain('outcome: **budget exceeded**');
    expect(body).toContain('12.3k tokens in, 450 out, $3.50, 4 turns');
    expect(body).toContain('took 12 min 3 s');
  });

  it('lists what the sandbox refused, as the check run does, with the agent\'s host names inert', () => {
    const refused = { count: 3, hosts: ['169.254.169.254', 'evil.example`](x)', 'localhost'] };
    const body = render(task({ status: 'success', outcome: 'success', networkRefused: refused }), 'processing');
    expect(body).toContain("🛡️ 3 network requests refused (`169.254.169.254`, `evil.example](x)`, `localhost`)");
    const view = checkRunView(task({ status: 'failed', outcome: 'agent_error', networkRefused: { count: 12, hosts: ['a.example'] } }), null, 'https://gaffer.test/admin/tasks/t1');
    expect(view.summary).toContain('**Network:** 12 network requests refused (`a.example`, …)');
    expect(checkRunView(task({ status: 'success', outcome: 'success' }), null, 'u').summary).toContain('**Network:** no request refused');
  });

  it('gives a queued task its position and an ETA', () => {
    const body = renderStatusComment({
      issue: { status: 'processing' },
      task: task({ status: 'pending' }),
      node: null,
      queuePosition: 3,
      queue: { reason: null, etaSeconds: 600 },
      taskUrl: undefined,
    });
    expect(body).toContain('⏳ Queued (position 3, ETA about 10 min): waiting for a free node.');
  });

  it('estimates the start from the median run and the tasks ahead', () => {
    // Two slots, both busy, this task second in line: one wave of a 5-minute median ahead.
    expect(estimateStartSeconds({ position: 2, onNodes: 2, capacity: 2, medianSeconds: 300 })).toBe(300);
    // A free slot: it starts now.
    expect(estimateStartSeconds({ position: 1, onNodes: 1, capacity: 2, medianSeconds: 300 })).toBe(0);
    // No history, or no capacity: unknown rather than a guess.
    expect(estimateStartSeconds({ position: 1, onNodes: 0, capacity: 2, medianSeconds: undefined })).toBeNull();
    expect(estimateStartSeconds({ position: 1, onNodes: 0, capacity: 0, medianSeconds: 60 })).toBeNull();
    expect(formatEta(30)).toBe('less than a minute');
    expect(formatEta(5400)).toBe('about 1.5 h');
  });

  it('follow-ups: their own lines on the pull request, the run options shown, the issue\'s line once merged', () => {
    const fu = (over: Partial<TaskRow>) => task({ kind: 'follow_up', trigger: 'ci', prNumber: 7, resultBranch: 'gaffer/x', agent: 'codex', model: 'o4', ...over });
    const on = (t: TaskRow, status: 'pending_merge' | 'merged') =>
      renderStatusComment({ issue: { status }, task: t, node: { name: 'n1' }, queuePosition: null, taskUrl: undefined });
    expect(on(fu({ status: 'running' }), 'pending_merge')).toContain('Follow-up running on node `n1` (fixing the failed checks)');
    expect(on(fu({ status: 'success' }), 'pending_merge')).toContain('Follow-up pushed to `gaffer/x`');
    const failed = on(fu({ status: 'failed', errorMessage: 'the branch moved' }), 'pending_merge');
    expect(failed).toContain('Follow-up failed: `the branch moved`');
    expect(failed).toContain('follow-up (ci) · agent `codex` · model `o4`');
    expect(on(fu({ status: 'success' }), 'merged')).toContain('Merged (#7)');
  });
});
