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
import { failTask, REPORT_CLAIM_MS } from './task-end.js';
import { taskBranch } from '../protocol/task-branch.js';

/** A GitHub double for pull requests whose opening the test holds until it lets go. */
function heldPullRequests() {
  const opened: Array<{ taskId: string; release: (pr: { number: number; url: string }) => void }> = [];
  const closed: Array<{ number: number; comment: string }> = [];
  let arrived: (() => void) | undefined;
  const port: PullRequests = {
    ensurePullRequest: ({ task }) =>
      new Promise((resolve) => {
        opened.push({ taskId: task.id, release: resolve });
        arrived?.();
      }),
    closePullRequest: async ({ number, comment }) => {
      closed.push({ number, comment });
    },
  };
  const nextOpen = () =>
    new Promise<void>((resolve) => {
      arrived = resolve;
    });
  return { port, opened, closed, nextOpen };
}

describe('a success report claims its task before GitHub is called', () => {
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

  it('holds off a cancel and the sweeper while the pull request is opened, then records the success', async () => {
    const t = await runningTask();
    const opening = prs.nextOpen();
    const reporting = t.report();
    await opening;

    const cancel = await h.app.request(`/api/v1/tasks/${t.taskId}/cancel`, jsonInit('POST', admin.token));
    expect(cancel.status).toBe(409);
    expect(await cancel.json()).toMatchObject({ error: 'illegal_transition', detail: expect.stringContaining('pull request is being opened') });
    const timeout = await failTask(h.services.tasks, { taskId: t.taskId, kind: 'timeout', message: 'timed out' });
    expect(timeout.kind).toBe('claimed');
    expect((await getTask(h.db.db, t.taskId))?.status).toBe('running');

    prs.opened.at(-1)!.release({ number: 71, url: 'https://github.com/octo/x/pull/71' });
    const res = await reporting;
    expect(res.status).toBe(200);
    const task = await getTask(h.db.db, t.taskId);
    expect(task).toMatchObject({ status: 'success', prNumber: 71, reportClaimedUntil: null });
    expect((await getIssue(h.db.db, t.issueId))?.status).toBe('pending_merge');
    expect(prs.closed).toEqual([]);
  });

  it('closes, with a comment saying why, a pull request opened in a race the report lost', async () => {
    const t = await runningTask();
    const opening = prs.nextOpen();
    const reporting = t.report();
    await opening;

    // GitHub took longer than the claim: the task may end now, and is cancelled.
    h.clock.advance(REPORT_CLAIM_MS + 1000);
    const cancel = await h.app.request(`/api/v1/tasks/${t.taskId}/cancel`, jsonInit('POST', admin.token));
    expect(cancel.status).toBe(200);

    prs.opened.at(-1)!.release({ number: 72, url: 'https://github.com/octo/x/pull/72' });
    const res = await reporting;
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ error: 'stale_attempt' });
    expect(prs.closed).toHaveLength(1);
    expect(prs.closed[0]!.number).toBe(72);
    expect(prs.closed[0]!.comment).toContain(`task ${t.taskId}`);
    expect(prs.closed[0]!.comment).toContain('had ended before its report was recorded');
    expect(prs.closed[0]!.comment).toContain('cancelled');
    expect(await getTask(h.db.db, t.taskId)).toMatchObject({ status: 'failed', failureKind: 'cancelled', prNumber: null });
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
