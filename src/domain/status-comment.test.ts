import { describe, expect, it } from 'vitest';
import type { TaskRow } from '../db/schema.js';
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

  it("shows the agent's reason short, with no @mention that would notify anyone", () => {
    const body = render(task({ failureKind: 'agent_failed', errorMessage: `agent exited 3: ask @octocat ${'x'.repeat(500)}` }));
    expect(body).toContain('Failed: agent exited 3: ask @\u200boctocat');
    expect(body).not.toMatch(/@octocat/);
    expect(body).toContain('x…');
    expect(body.length).toBeLessThan(600);
  });
});
