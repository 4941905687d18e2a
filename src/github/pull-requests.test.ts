import { eq } from 'drizzle-orm';
import nock from 'nock';
import { describe, expect, it } from 'vitest';
import { API, example, type GitHubHarness, INSTALLATION_ID, mockInstallationAuth, mockPermission, mockRepoConfig } from '../../test/github.js';
import { useGitHubStack } from '../../test/github-stack.js';
import { jsonInit } from '../../test/harness.js';
import type { NodeDouble } from '../../test/node-double.js';
import { getIssueByGithubId } from '../db/queries/github-sync.js';
import { tasks } from '../db/schema.js';
import { taskBranch } from '../protocol/task-branch.js';
import { commentEvent, nextSeq, REPO, TASK_TOKEN } from '../../test/github-events.js';

describe('pull requests from reported branches', () => {
  const REPO_ID = 186853002;
  let h: GitHubHarness;
  let node: NodeDouble;
  let nodeToken: string;
  // A database of its own: tests above leave tasks queued, which would take this block's node.
  useGitHubStack({ node: () => ({ name: `pr-node-${nextSeq()}` }) }, (s) => {
    h = s.h;
    node = s.node!;
    nodeToken = s.nodeToken;
  });

  /**
   * Starts an issue with `/start`, lets the scheduler dispatch it to the node double with a minted
   * installation token, and returns the issue, its task and the status-comment bodies GitHub got.
   */
  async function startAndDispatch() {
    const p = commentEvent('/start');
    // The comment ids of this issue's status comment follow the event's own sequence number.
    const seq = p.issue.number - 100;
    const statusBodies: string[] = [];
    const api = nock(API);
    mockInstallationAuth(api);
    mockRepoConfig(api, REPO);
    mockPermission(api, REPO, 'maintainer', 'write');
    api.post(`/repos/${REPO}/issues/comments/${p.comment.id}/reactions`).reply(201, {});
    api.get(`/repos/${REPO}/issues/${p.issue.number}/comments`).query(true).reply(200, []);
    api.post(`/repos/${REPO}/issues/${p.issue.number}/comments`).reply(201, (_uri, body) => {
      statusBodies.push((body as { body: string }).body);
      return { id: 4300 + seq };
    });
    // Its own scope: nock's persist() applies to the whole scope.
    nock(API)
      .patch(`/repos/${REPO}/issues/comments/${4300 + seq}`)
      .reply(200, (_uri, body) => {
        statusBodies.push((body as { body: string }).body);
        return { id: 4300 + seq };
      })
      .persist();
    // The task's git credential: minted for this one repository, contents: write only.
    api
      .post(
        `/app/installations/${INSTALLATION_ID}/access_tokens`,
        (b) => JSON.stringify(b.repository_ids) === JSON.stringify([REPO_ID]) && JSON.stringify(b.permissions) === '{"contents":"write"}',
      )
      .reply(201, { token: 'ghs_taskscopedtoken00000000000000000', expires_at: new Date(Date.now() + 3600_000).toISOString() });
    await h.deliver('issue_comment', p);
    await h.settle();
    const issue = await getIssueByGithubId(h.db.db, p.issue.id);
    const [task] = await h.db.db.select().from(tasks).where(eq(tasks.issueId, issue!.id));
    expect(task).toMatchObject({ status: 'running' });
    expect(node.dispatches()).toHaveLength(1);
    expect(node.dispatches()[0]).toMatchObject({ credential_token: 'ghs_taskscopedtoken00000000000000000', issue_number: p.issue.number });
    return { p, issue: issue!, task: task!, statusBodies };
  }

  function report(issueId: string, body: Record<string, unknown>) {
    return h.app.request(`/api/v1/issues/${issueId}/report-branch`, jsonInit('POST', nodeToken, body));
  }

  function closedEvent(number: number, branch: string, merged: boolean) {
    const e = example('pull_request', 'closed');
    e.number = number;
    e.pull_request.number = number;
    e.pull_request.head.ref = branch;
    e.pull_request.merged = merged;
    return e;
  }

  it('opens the PR once for a success report, against the default branch, and tracks the merge', async () => {
    const { issue, task, statusBodies } = await startAndDispatch();
    const branch = taskBranch(issue.number, task.id);
    const api = nock(API);
    api.get(`/repos/${REPO}/pulls`).query({ head: `Codertocat:${branch}`, state: 'all', per_page: 1 }).reply(200, []);
    api
      .post(`/repos/${REPO}/pulls`, (b) => {
        return (
          b.head === branch &&
          b.base === 'master' &&
          b.body.includes(`Closes #${issue.number}`) &&
          b.body.includes(`https://gaffer.test/admin/tasks/${task.id}`) &&
          b.draft === false
        );
      })
      .reply(201, { number: 12, html_url: `https://github.com/${REPO}/pull/12` });
    // The task's token is revoked with itself as soon as the report is in.
    api.delete('/installation/token').matchHeader('authorization', `token ${TASK_TOKEN}`).reply(204);
    const res = await report(issue.id, { task_id: task.id, branch_name: branch, status: 'success' });
    expect(res.status).toBe(200);
    await h.settle();
    expect(await getIssueByGithubId(h.db.db, issue.githubId!)).toMatchObject({ status: 'pending_merge' });
    const [done] = await h.db.db.select().from(tasks).where(eq(tasks.id, task.id));
    expect(done).toMatchObject({ status: 'success', resultBranch: branch, prNumber: 12, prUrl: `https://github.com/${REPO}/pull/12` });

    // The same report again is a no-op: no second PR (an unexpected call would fail the test).
    const repeat = await report(issue.id, { task_id: task.id, branch_name: branch, status: 'success' });
    expect(repeat.status).toBe(200);
    await h.settle();

    // A PR Gaffer did not open changes nothing; Gaffer's merged PR moves the issue to merged.
    await h.deliver('pull_request', closedEvent(99, 'someone-elses-branch', true));
    await h.deliver('pull_request', closedEvent(12, branch, true));
    await h.settle();
    expect(await getIssueByGithubId(h.db.db, issue.githubId!)).toMatchObject({ status: 'merged' });
    expect(statusBodies.some((b) => b.includes('Running on node'))).toBe(true);
    expect(statusBodies.some((b) => b.includes('Pull request #12 opened'))).toBe(true);
    expect(statusBodies.at(-1)).toContain('Merged (#12)');
  });

  it('finds a PR that already exists for the branch instead of opening a second', async () => {
    const { issue, task } = await startAndDispatch();
    const branch = taskBranch(issue.number, task.id);
    nock(API)
      .get(`/repos/${REPO}/pulls`)
      .query(true)
      .reply(200, [{ number: 31, html_url: `https://github.com/${REPO}/pull/31` }])
      .delete('/installation/token')
      .reply(204);
    expect((await report(issue.id, { task_id: task.id, branch_name: branch, status: 'success' })).status).toBe(200);
    await h.settle();
    const [done] = await h.db.db.select().from(tasks).where(eq(tasks.id, task.id));
    expect(done).toMatchObject({ prNumber: 31 });
    expect(await getIssueByGithubId(h.db.db, issue.githubId!)).toMatchObject({ status: 'pending_merge' });
  });

  it('moves the issue to terminated when its PR is closed without merging, once', async () => {
    const { issue, task, statusBodies } = await startAndDispatch();
    const branch = taskBranch(issue.number, task.id);
    const api = nock(API);
    api.get(`/repos/${REPO}/pulls`).query(true).reply(200, []);
    api.post(`/repos/${REPO}/pulls`).reply(201, { number: 13, html_url: `https://github.com/${REPO}/pull/13` });
    api.delete('/installation/token').reply(204);
    await report(issue.id, { task_id: task.id, branch_name: branch, status: 'success' });
    await h.settle();
    const closed = closedEvent(13, branch, false);
    await h.deliver('pull_request', closed);
    await h.settle();
    expect(await getIssueByGithubId(h.db.db, issue.githubId!)).toMatchObject({ status: 'terminated' });
    expect(statusBodies.at(-1)).toContain('closed without merging');
    // A redelivery of the close (new delivery id, same event) changes nothing.
    await h.deliver('pull_request', closed);
    await h.settle();
    expect(await getIssueByGithubId(h.db.db, issue.githubId!)).toMatchObject({ status: 'terminated' });
  });

  it('moves the issue to terminated with the reason on a failure report, and restarts it on /start', async () => {
    const { p, issue, task, statusBodies } = await startAndDispatch();
    nock(API).delete('/installation/token').matchHeader('authorization', `token ${TASK_TOKEN}`).reply(204);
    const res = await report(issue.id, { task_id: task.id, branch_name: '', status: 'failed', error_message: 'no changes' });
    expect(res.status).toBe(200);
    await h.settle();
    expect(await getIssueByGithubId(h.db.db, issue.githubId!)).toMatchObject({ status: 'terminated' });
    expect(statusBodies.at(-1)).toContain('Failed: `no changes');

    // `/start` on the terminated issue restarts it: a second attempt, dispatched again.
    const restart = commentEvent('/start');
    restart.issue = p.issue;
    const api = nock(API);
    mockRepoConfig(api, REPO);
    mockPermission(api, REPO, 'maintainer', 'write');
    api.post(`/repos/${REPO}/issues/comments/${restart.comment.id}/reactions`).reply(201, {});
    api.post(`/app/installations/${INSTALLATION_ID}/access_tokens`, (b) => 'repository_ids' in b).reply(201, { token: 'ghs_second000000000000000000000000000' });
    await h.deliver('issue_comment', restart);
    await h.settle();
    expect(await getIssueByGithubId(h.db.db, issue.githubId!)).toMatchObject({ status: 'processing' });
    const attempts = await h.db.db.select().from(tasks).where(eq(tasks.issueId, issue.id));
    expect(attempts.map((t) => [t.attempt, t.status]).sort()).toEqual([
      [1, 'failed'],
      [2, 'running'],
    ]);
    expect(node.dispatches()).toHaveLength(2);
    expect(statusBodies.at(-1)).toContain('Running on node');
  });
});
