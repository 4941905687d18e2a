import { eq } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { registerDouble, startIssueApi, startableIssue } from '../../test/flow.js';
import { createHarness, type Harness, jsonInit } from '../../test/harness.js';
import { startNodeDouble, type NodeDouble } from '../../test/node-double.js';
import { ensureInstallationRow } from '../db/queries/github-sync.js';
import { getIssue } from '../db/queries/issues.js';
import { getTask } from '../db/queries/tasks.js';
import { nodes, repositories } from '../db/schema.js';
import type { PullRequests } from './ports.js';
import { failTask } from './task-end.js';
import { DomainError } from './errors.js';
import { taskBranch } from '../protocol/task-branch.js';

/** A GitHub double for pull requests whose opening the test holds until it lets go. */
function heldPullRequests() {
  const opened: Array<{ taskId: string; release: (pr: { number: number; url: string }) => void }> = [];
  const closed: Array<{ number: number; comment: string }> = [];
  let arrived: (() => void) | undefined;
  let refusal: Error | undefined;
  const port: PullRequests = {
    ensurePullRequest: ({ task }) => {
      if (refusal) {
        const err = refusal;
        refusal = undefined;
        return Promise.reject(err);
      }
      return new Promise((resolve) => {
        opened.push({ taskId: task.id, release: resolve });
        arrived?.();
      });
    },
    closePullRequest: async ({ number, comment }) => {
      closed.push({ number, comment });
    },
  };
  const nextOpen = () =>
    new Promise<void>((resolve) => {
      arrived = resolve;
    });
  const refuseNext = (err: Error) => {
    refusal = err;
  };
  return { port, opened, closed, nextOpen, refuseNext };
}

describe('a success report is answered before GitHub is called', () => {
  let h: Harness;
  let node: NodeDouble;
  let admin: { token: string };
  const prs = heldPullRequests();

  beforeAll(async () => {
    h = await createHarness({ overrides: { pullRequests: prs.port } });
    admin = await h.signIn({ admin: true });
  });
  afterAll(async () => {
    await h?.close();
  });
  beforeEach(async () => {
    node = await startNodeDouble();
  });
  afterEach(async () => {
    await node.close();
    await h.db.db.update(nodes).set({ status: 'draining' });
  });

  /** A running task on a fresh node, in a repository with a GitHub installation. */
  async function runningTask() {
    const reg = await registerDouble(h, node, { name: `claim-${Date.now()}-${Math.random().toString(36).slice(2, 6)}` });
    const { issue, repository } = await startableIssue(h, admin.token);
    const started = await startIssueApi(h, admin.token, issue.id);
    expect(started.body.status).toBe('running');
    await ensureInstallationRow(h.db.db, 4242, 'octo');
    await h.db.db.update(repositories).set({ installationId: 4242 }).where(eq(repositories.id, repository.id));
    const report = () =>
      h.app.request(
        `/api/v1/issues/${issue.id}/report-branch`,
        jsonInit('POST', reg.token, { task_id: started.body.id, branch_name: taskBranch(issue.number, started.body.id), status: 'success' }),
      );
    return { taskId: started.body.id as string, issueId: issue.id, report };
  }

  it('answers a success report at once; the outbox opens the pull request, then the issue is pending merge', async () => {
    const t = await runningTask();
    const opening = prs.nextOpen();
    const res = await t.report();
    // The node has its answer while GitHub has not yet been asked (the double holds the call).
    expect(res.status).toBe(200);
    expect(await getTask(h.db.db, t.taskId)).toMatchObject({ status: 'success', prNumber: null });
    expect((await getIssue(h.db.db, t.issueId))?.status).toBe('processing');
    await opening;

    // The task has ended: a cancel or a timeout changes nothing now.
    const cancel = await h.app.request(`/api/v1/tasks/${t.taskId}/cancel`, jsonInit('POST', admin.token));
    expect(cancel.status).toBe(409);
    const timeout = await failTask(h.services.tasks, { taskId: t.taskId, kind: 'timeout', message: 'timed out' });
    expect(timeout.kind).toBe('not_active');

    prs.opened.at(-1)!.release({ number: 71, url: 'https://github.com/octo/x/pull/71' });
    await h.services.effects.idle();
    expect(await getTask(h.db.db, t.taskId)).toMatchObject({ status: 'success', prNumber: 71 });
    expect((await getIssue(h.db.db, t.issueId))?.status).toBe('pending_merge');
    // A repeated report records nothing more: GitHub is not asked again.
    expect((await t.report()).status).toBe(200);
    await h.services.effects.idle();
    expect(prs.opened.filter((o) => o.taskId === t.taskId)).toHaveLength(1);
    expect(prs.closed).toEqual([]);
  });

  it('ends the issue terminated, with the reason, when GitHub refuses the pull request', async () => {
    const t = await runningTask();
    prs.refuseNext(new DomainError('invalid_input', 'GitHub refused opening the pull request (422): Validation Failed'));
    expect((await t.report()).status).toBe(200);
    await h.services.effects.idle();
    expect(await getTask(h.db.db, t.taskId)).toMatchObject({
      status: 'success',
      prNumber: null,
      failureKind: 'pull_request_failed',
      errorMessage: expect.stringContaining('Validation Failed'),
    });
    expect((await getIssue(h.db.db, t.issueId))?.status).toBe('terminated');
  });

  it('never calls GitHub for a task that has already ended', async () => {
    const t = await runningTask();
    expect((await h.app.request(`/api/v1/tasks/${t.taskId}/cancel`, jsonInit('POST', admin.token))).status).toBe(200);
    const before = prs.opened.length;
    const res = await t.report();
    expect(res.status).toBe(409);
    expect(prs.opened.length).toBe(before);
  });
});
