import { eq } from 'drizzle-orm';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTestDb, type TestDb } from '../../test/db.js';
import { mockStartCalls, REPO } from '../../test/github-events.js';
import { API, createGitHubHarness, example, type GitHubHarness, INSTALLATION_ID } from '../../test/github.js';
import { jsonInit } from '../../test/harness.js';
import { registerDouble } from '../../test/flow.js';
import { type NodeDouble, startNodeDouble } from '../../test/node-double.js';
import { getIssueByGithubId } from '../db/queries/github-sync.js';
import { tasks } from '../db/schema.js';
import { setNodeDraining } from '../domain/nodes.js';
import { taskBranch } from '../protocol/task-branch.js';

const REPO_ID = 186853002;
const BASE_SHA = 'a'.repeat(40);
const HEAD_SHA = 'b'.repeat(40);
let seq = 0;

/**
 * The body of "Create a check run" and "Update a check run", as GitHub's REST reference documents
 * them: what GitHub would refuse with a 422 fails here.
 */
const conclusion = z.enum(['action_required', 'cancelled', 'failure', 'neutral', 'success', 'skipped', 'stale', 'timed_out']);
const iso = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
const checkRunBody = z
  .object({
    name: z.string().min(1),
    head_sha: z.string().regex(/^[0-9a-f]{40}$/).optional(),
    details_url: z.url().optional(),
    external_id: z.string().optional(),
    status: z.enum(['queued', 'in_progress', 'completed']).optional(),
    started_at: iso.optional(),
    conclusion: conclusion.optional(),
    completed_at: iso.optional(),
    output: z.object({ title: z.string().min(1), summary: z.string().min(1).max(65535), text: z.string().max(65535).optional() }).strict().optional(),
  })
  .strict()
  .refine((b) => (b.status === 'completed') === (b.conclusion !== undefined), 'a completed run needs a conclusion, and only it');
const createBody = checkRunBody.and(z.object({ head_sha: z.string() }));

/** GitHub's answer to a create: a real check run object from @octokit/webhooks-examples. */
function checkRunReply(id: number, sha: string, body: Record<string, unknown>) {
  const run = example('check_run', 'created').check_run;
  return { ...run, id, head_sha: sha, name: body.name, status: body.status, conclusion: body.conclusion ?? null, details_url: body.details_url, external_id: body.external_id };
}

describe('the Gaffer check run', () => {
  let db: TestDb;
  let h: GitHubHarness;
  let node: NodeDouble;
  let nodeToken: string;
  let nodeId: string;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await db?.close();
  });
  beforeEach(async () => {
    h = await createGitHubHarness({ db, checkRuns: true });
    node = await startNodeDouble();
    ({ id: nodeId, token: nodeToken } = await registerDouble(h, node, { name: `check-node-${++seq}` }));
  });
  afterEach(async () => {
    await h.settle();
    await setNodeDraining(h.db.db, nodeId, true);
    await h.close();
    await node.close();
  });

  /** `/start` on a fresh issue, dispatched; the check run is created in progress on the default branch's head. */
  async function startAndDispatch(created: Array<Record<string, unknown>>) {
    const p = example('issue_comment', 'created');
    p.issue.id = 950_000 + seq;
    p.issue.number = 300 + seq;
    p.comment.id = 750_000 + seq;
    p.comment.body = '/start';
    p.comment.user.login = 'maintainer';
    p.sender.login = 'maintainer';
    const api = mockStartCalls(p, { statusCommentId: 8800 + seq });
    nock(API).patch(`/repos/${REPO}/issues/comments/${8800 + seq}`).reply(200, { id: 8800 + seq }).persist();
    api
      .post(`/app/installations/${INSTALLATION_ID}/access_tokens`, (b) => JSON.stringify(b.repository_ids) === JSON.stringify([REPO_ID]))
      .reply(201, { token: 'ghs_taskscopedtoken00000000000000000', expires_at: new Date(Date.now() + 3600_000).toISOString() });
    // The branch starts at the default branch's head: the run goes there while the agent works.
    api.get(`/repos/${REPO}/git/ref/heads%2Fmaster`).reply(200, { ref: 'refs/heads/master', object: { sha: BASE_SHA, type: 'commit' } });
    api.post(`/repos/${REPO}/check-runs`).reply(201, (_uri, body) => {
      const b = createBody.parse(body);
      created.push(b);
      return checkRunReply(5000 + seq, b.head_sha, b);
    });
    await h.deliver('issue_comment', p);
    await h.settle();
    const issue = (await getIssueByGithubId(h.db.db, p.issue.id))!;
    const [task] = await h.db.db.select().from(tasks).where(eq(tasks.issueId, issue.id));
    expect(task).toMatchObject({ status: 'running', checkRunId: 5000 + seq, checkRunSha: BASE_SHA });
    return { issue, task: task! };
  }

  it('runs in progress with the live log link and phase, then completes on the pushed head with outcome, usage and duration', async () => {
    const created: Array<Record<string, unknown>> = [];
    const { issue, task } = await startAndDispatch(created);
    expect(created[0]).toMatchObject({
      name: 'Gaffer',
      head_sha: BASE_SHA,
      status: 'in_progress',
      details_url: `https://gaffer.test/admin/tasks/${task.id}`,
      external_id: task.id,
      output: { title: 'Running' },
    });
    expect((created[0]!.output as { summary: string }).summary).toContain("Phase: running on node `check-node-");
    expect((created[0]!.output as { summary: string }).summary).toContain(`(https://gaffer.test/admin/tasks/${task.id})`);

    const branch = taskBranch(issue.number, task.id);
    const api = nock(API);
    api.get(`/repos/${REPO}/pulls`).query(true).reply(200, []);
    api.post(`/repos/${REPO}/pulls`).reply(201, { number: 77, html_url: `https://github.com/${REPO}/pull/77` });
    api.delete('/installation/token').reply(204);
    const updates: Array<Record<string, unknown>> = [];
    api.patch(`/repos/${REPO}/check-runs/${5000 + seq}`).reply(200, (_uri, body) => {
      updates.push(checkRunBody.parse(body));
      return checkRunReply(5000 + seq, BASE_SHA, body as Record<string, unknown>);
    });
    api.get(`/repos/${REPO}/git/ref/heads%2F${encodeURIComponent(branch)}`).reply(200, { ref: `refs/heads/${branch}`, object: { sha: HEAD_SHA, type: 'commit' } });
    api.post(`/repos/${REPO}/check-runs`).reply(201, (_uri, body) => {
      const b = createBody.parse(body);
      created.push(b);
      return checkRunReply(6000 + seq, HEAD_SHA, b);
    });
    const usage = { input_tokens: 1500, output_tokens: 450, cost_usd: 0.12, turns: 4 };
    const res = await h.app.request(
      `/api/v1/issues/${issue.id}/report-branch`,
      jsonInit('POST', nodeToken, { task_id: task.id, branch_name: branch, status: 'success', usage }),
    );
    expect(res.status).toBe(200);
    await h.settle();

    expect(updates[0]).toMatchObject({ status: 'completed', conclusion: 'success', output: { title: 'success' } });
    const final = created[1]!;
    expect(final).toMatchObject({ name: 'Gaffer', head_sha: HEAD_SHA, status: 'completed', conclusion: 'success' });
    const summary = (final.output as { summary: string }).summary;
    expect(summary).toContain('**Outcome:** success');
    expect(summary).toContain('**Usage:** 1500 tokens in, 450 out, $0.12, 4 turns');
    expect(summary).toMatch(/\*\*Duration:\*\* \d+ s/);
    expect(summary).toContain('**Pull request:** #77');
    const [row] = await h.db.db.select().from(tasks).where(eq(tasks.id, task.id));
    expect(row).toMatchObject({ checkRunId: 6000 + seq, checkRunSha: HEAD_SHA, outcome: 'success' });
  });

  it('completes the run with the failure outcome mapped to a conclusion, on the same commit', async () => {
    const created: Array<Record<string, unknown>> = [];
    const { issue, task } = await startAndDispatch(created);
    const api = nock(API);
    api.delete('/installation/token').reply(204);
    const updates: Array<Record<string, unknown>> = [];
    api.patch(`/repos/${REPO}/check-runs/${5000 + seq}`).reply(200, (_uri, body) => {
      updates.push(checkRunBody.parse(body));
      return checkRunReply(5000 + seq, BASE_SHA, body as Record<string, unknown>);
    });
    const res = await h.app.request(
      `/api/v1/issues/${issue.id}/report-branch`,
      jsonInit('POST', nodeToken, { task_id: task.id, status: 'failed', error_message: 'agent hung: no output for 600 s', failure_code: 'hung' }),
    );
    expect(res.status).toBe(200);
    await h.settle();
    expect(updates).toHaveLength(1);
    expect(updates[0]).toMatchObject({ status: 'completed', conclusion: 'timed_out', output: { title: 'hung (no output)' } });
    expect((updates[0]!.output as { summary: string }).summary).toContain('**Reason:** `agent hung: no output for 600 s`');
    // One run only: no second create (an unexpected call would fail the test).
    expect(created).toHaveLength(1);
  });
});
