import { eq } from 'drizzle-orm';
import nock from 'nock';
import { describe, expect, it } from 'vitest';
import { API, type GitHubHarness, INSTALLATION_ID, mockInstallationAuth, mockPermission, mockRepoConfig } from '../../test/github.js';
import { useGitHubStack } from '../../test/github-stack.js';
import { jsonInit } from '../../test/harness.js';
import type { NodeDouble } from '../../test/node-double.js';
import { getIssueByGithubId } from '../db/queries/github-sync.js';
import { tasks } from '../db/schema.js';
import { taskBranch } from '../protocol/task-branch.js';
import { commentEvent, nextSeq, REPO, TASK_TOKEN } from '../../test/github-events.js';

// Every agent pull request says whether its change touches tests, CI or agent configuration,
// from the changed paths the node reports; the report's verify results are kept on the task.

describe('the pull request body says whether the change touches tests, CI or agent configuration', () => {
  let h: GitHubHarness;
  let node: NodeDouble;
  let nodeToken: string;
  useGitHubStack({ node: () => ({ name: `touch-node-${nextSeq()}` }) }, (s) => {
    h = s.h;
    node = s.node!;
    nodeToken = s.nodeToken;
  });

  /** `/start` under a config with verify commands, dispatched to the node double; the PR bodies GitHub gets. */
  async function startAndReport(report: Record<string, unknown>) {
    const p = commentEvent('/start');
    const api = nock(API);
    mockInstallationAuth(api);
    mockRepoConfig(api, REPO, 'verify:\n  - npm test\n');
    mockPermission(api, REPO, 'maintainer', 'write');
    api.post(`/repos/${REPO}/issues/comments/${p.comment.id}/reactions`).reply(201, {});
    const status = nock(API).persist();
    status.get(`/repos/${REPO}/issues/${p.issue.number}/comments`).query(true).reply(200, []);
    status.post(`/repos/${REPO}/issues/${p.issue.number}/comments`).reply(201, { id: 5500 + nextSeq() });
    status.patch(/\/repos\/.*\/issues\/comments\/\d+/).reply(200, {});
    api.post(`/app/installations/${INSTALLATION_ID}/access_tokens`).reply(201, { token: TASK_TOKEN, expires_at: new Date(Date.now() + 3600_000).toISOString() });
    await h.deliver('issue_comment', p);
    await h.settle();
    const issue = (await getIssueByGithubId(h.db.db, p.issue.id))!;
    const [task] = await h.db.db.select().from(tasks).where(eq(tasks.issueId, issue.id));
    expect(node.dispatches().at(-1)).toMatchObject({ verify: ['npm test'] });
    const branch = taskBranch(issue.number, task!.id);
    const bodies: string[] = [];
    api.get(`/repos/${REPO}/pulls`).query(true).reply(200, []);
    api.post(`/repos/${REPO}/pulls`).reply(201, (_u, b) => {
      bodies.push((b as { body: string }).body);
      return { number: 70, html_url: `https://github.com/${REPO}/pull/70` };
    });
    api.delete('/installation/token').reply(204);
    const res = await h.app.request(`/api/v1/issues/${issue.id}/report-branch`, jsonInit('POST', nodeToken, { task_id: task!.id, branch_name: branch, status: 'success', ...report }));
    expect(res.status).toBe(200);
    await h.settle();
    nock.cleanAll();
    const [done] = await h.db.db.select().from(tasks).where(eq(tasks.id, task!.id));
    return { bodies, done: done! };
  }

  it('names the test it deleted and the script the verify command runs, and keeps the verify results', async () => {
    const verify = [{ command: 'npm test', status: 'passed', exit_code: 0, duration_ms: 1234, tests: { passed: 7, failed: 0, skipped: 1, source: 'junit' } }];
    const change = { files: 3, additions: 4, deletions: 30, paths: ['src/parser.ts', 'src/parser.test.ts', 'package.json'] };
    const { bodies, done } = await startAndReport({ change, verify });
    expect(bodies).toHaveLength(1);
    expect(bodies[0]).toContain(
      "**Tests, CI and agent configuration: this change touches tests, the verify commands' scripts: `src/parser.test.ts`, `package.json`**; review those files first.",
    );
    expect(done).toMatchObject({ status: 'success', prNumber: 70, change, verifyResults: verify });
  });

  it('says so when the change touches none of them, and says it is not known when an older node reports no paths', async () => {
    const clean = await startAndReport({ change: { files: 1, additions: 2, deletions: 1, paths: ['src/parser.ts'] } });
    expect(clean.bodies[0]).toContain('Tests, CI and agent configuration: this change touches no tests, CI or agent configuration.');
    const old = await startAndReport({});
    expect(old.bodies[0]).toContain('Tests, CI and agent configuration: not known (the node did not report the changed files).');
    expect(old.done).toMatchObject({ change: null, verifyResults: null });
  });
});
